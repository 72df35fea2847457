"""The block counts of the eSEN-30M, EquiformerV2-31M and UMA-M cards, checked by parameter count:
the gated checkpoints cannot be read here, so each architecture is built with random weights from
fairchem's own classes in its environment (``environments/count_fairchem_v1_params.py``,
``environments/count_uma_params.py``) with the card's number of blocks and one fewer and one
more, and its size compared with the published one."""

from __future__ import annotations

import subprocess

import pytest

from matteralign.models.registry import get_card
from matteralign.run.environments import build_environment
from tests.models.environments import HERE

# model_params of matbench-discovery's model files esen-30m-oam.yml, esen-30m-mp.yml and
# eqv2-s-dens-mp.yml (eqV2 S DeNS: the 31M EquiformerV2 of the MPtrj checkpoint)
MATBENCH_DISCOVERY_PARAMS = {"esen-30m-oam": ("esen-30m", 30_161_153),
                             "esen-30m-mp": ("esen-30m-mp", 30_085_121),
                             "eqv2-31m-mp": ("eqv2-31m", 31_207_434)}


def card_blocks(card_id: str) -> int:
    """Number of ``block_<i>`` layers of the card."""
    return sum(name.startswith("block_") for name in get_card(card_id).layer_names)


def counts(environment: str, script: str, first: str, blocks: int) -> dict[int, list[int]]:
    """``script FIRST BLOCKS-1 BLOCKS BLOCKS+1`` run by ``environment``'s Python: the counts of
    its ``FIRST BLOCKS COUNT...`` lines, by number of blocks."""
    python = build_environment(environment).python
    args = [first, *(str(n) for n in (blocks - 1, blocks, blocks + 1))]
    done = subprocess.run([str(python), str(HERE / script), *args], capture_output=True,
                          text=True, check=True, cwd=HERE.parents[2])
    rows = [line.split() for line in done.stdout.splitlines()]
    return {int(row[1]): [int(value) for value in row[2:]] for row in rows}


@pytest.mark.slow  # about 20 s each: three ~30 M-parameter models built in fairchem-v1
@pytest.mark.parametrize("card_id", sorted(MATBENCH_DISCOVERY_PARAMS))
def test_fairchem_v1_card_blocks_give_matbench_discoverys_parameter_count(card_id):
    model, published = MATBENCH_DISCOVERY_PARAMS[card_id]
    blocks = card_blocks(card_id)
    found = counts("fairchem-v1", "count_fairchem_v1_params.py", model, blocks)
    assert found[blocks] == [published]
    assert found[blocks - 1][0] < 0.95 * published < 1.05 * published < found[blocks + 1][0]


@pytest.mark.slow  # about 40 s: UMAs with 0-3 experts (up to 140 M parameters) built in fairchem
def test_uma_m_card_blocks_give_the_published_1p4_b_total_and_50_m_active_parameters():
    blocks = card_blocks("uma-m-1p1-omat")
    assert card_blocks("uma-m-1p1-omol") == blocks
    found = counts("fairchem", "count_uma_params.py", "4", blocks)
    active, total = found[blocks]
    assert round(total / 1e8) == 14 and round(active / 1e7) == 5  # "1.4B", "~50M active"
    assert round(found[blocks - 1][1] / 1e8) == 13 and round(found[blocks + 1][1] / 1e8) == 15
