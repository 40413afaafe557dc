"""The strategy registry (phononft.strategies): options, config schema, adding a strategy module, and the
pulls toward the foundation (L2-SP per parameter, delta decay)."""

from __future__ import annotations

import copy
import sys
import textwrap
from pathlib import Path

import pytest
import yaml

from phononft import strategies
from phononft.config import ConfigError, finetune_settings, load_schema, strategy_params, validate_config
from phononft.strategies.base import TRAINING, TRAINING_NAMES

REPO = Path(__file__).resolve().parents[1]
EXPECTED = ["pretrained", "scratch", "naive", "frozen", "multihead", "lora", "equitrain", "delta", "l2sp"]


def demo_config() -> dict:
    return yaml.safe_load((REPO / "config" / "config.yaml").read_text())


def test_registry_holds_every_strategy_with_what_it_trains_and_its_look():
    assert strategies.names() == EXPECTED
    assert strategies.trained() == EXPECTED[1:]
    looks = set()
    for s in strategies.all_strategies():
        assert s.trains and "\n" not in s.trains
        label, color, marker = s.style()
        assert label == s.name and color.startswith("#") and marker
        looks.add((color, marker))
        for option in s.options:  # every option: a type, a default of that type, a unit, a description
            assert option.description and option.unit
            validate = lambda value: strategies.get(s.name).resolve({option.name: value})  # noqa: E731
            assert validate(option.default)[option.name] == option.default
    assert len(looks) == len(EXPECTED)
    assert strategies.get("multihead").needs_replay and not strategies.get("naive").needs_replay
    with pytest.raises(ValueError, match=r"unknown strategy 'lorra' \(did you mean 'lora'\?\)"):
        strategies.get("lorra")


def test_options_resolve_with_defaults_and_refuse_bad_values():
    lora = strategies.get("lora")
    opts = lora.resolve({"lora_rank": 8})
    assert opts["lora_rank"] == 8 and opts["lora_alpha"] == 1.0
    assert {o.name for o in TRAINING} <= set(opts) and opts["lr"] == 5e-3
    with pytest.raises(ValueError, match=r"lora_rnak \(did you mean 'lora_rank'\?\)"):
        lora.resolve({"lora_rnak": 8})
    with pytest.raises(ConfigError, match="lora_rank"):
        lora.resolve({"lora_rank": 0})
    with pytest.raises(ConfigError, match="engine"):
        strategies.get("equitrain").resolve({"engine": "torch"})
    assert strategies.get("pretrained").resolve({}) == {}
    with pytest.raises(ValueError, match="unknown option"):
        strategies.get("pretrained").resolve({"lr": 1e-3})  # nothing trains


def test_schema_comes_from_the_registry():
    schema = load_schema()
    assert schema["properties"]["strategies"]["items"]["enum"] == EXPECTED
    params = schema["properties"]["finetune"]["properties"]["strategy_params"]["properties"]
    assert set(params) == set(EXPECTED)
    assert params["lora"]["properties"]["lora_rank"]["default"] == 4
    assert params["lora"]["properties"]["lora_rank"]["type"] == "integer"
    assert "default" not in params["lora"]["properties"]["lr"]  # shared options: defaults in finetune.defaults
    assert params["pretrained"]["properties"] == {}
    defaults = schema["properties"]["finetune"]["properties"]["defaults"]["properties"]
    assert set(defaults) == set(TRAINING_NAMES) and "[epochs]" in defaults["max_num_epochs"]["description"]


def test_typo_in_a_strategy_option_is_refused_naming_the_key():
    cfg = demo_config()
    cfg["finetune"]["strategy_params"]["lora"] = {"lora_rnak": 8}
    with pytest.raises(ConfigError, match=r"finetune.strategy_params.lora: unknown key\(s\) 'lora_rnak' "
                                          r"\(did you mean 'lora_rank'\?\)"):
        validate_config(cfg)
    cfg = demo_config()
    cfg["finetune"]["strategy_params"]["lora"] = {"freeze": 5}  # another strategy's option
    with pytest.raises(ConfigError, match=r"strategy_params.lora: unknown key\(s\) 'freeze'"):
        validate_config(cfg)
    cfg = demo_config()
    cfg["finetune"]["strategy_params"]["lroa"] = {}
    with pytest.raises(ConfigError, match=r"strategy_params: unknown key\(s\) 'lroa' \(did you mean 'lora'\?\)"):
        validate_config(cfg)
    cfg = demo_config()
    cfg["finetune"]["defaults"]["max_epochs"] = 3
    with pytest.raises(ConfigError, match=r"did you mean 'max_num_epochs'"):
        validate_config(cfg)


def test_validated_config_holds_every_default_once_and_params_only_the_strategys_own():
    cfg = validate_config(demo_config())
    lora = strategy_params(cfg, "lora")
    assert lora["lora_rank"] == 4 and lora["lr"] == 0.01 and lora["weight_decay"] == 5e-7
    assert "freeze" not in lora and "l2sp_lambda" not in lora
    assert strategy_params(cfg, "pretrained") == {}
    assert finetune_settings(cfg, "pretrained") == {"options": {}}
    assert cfg["finetune"]["recipe"] == "matched"  # the demo's; the schema's default is study
    assert finetune_settings(cfg, "naive") == {"options": strategy_params(cfg, "naive"), "recipe": "matched",
                                               "lr_grid": []}
    other = validate_config(demo_config())
    other["finetune"]["strategy_params"]["frozen"]["freeze"] = 6  # another strategy's option: lora unchanged
    assert finetune_settings(other, "lora") == finetune_settings(cfg, "lora")
    assert finetune_settings(other, "frozen") != finetune_settings(cfg, "frozen")


def test_matched_recipe_refuses_per_strategy_training_settings():
    cfg = demo_config()
    cfg["finetune"]["recipe"] = "matched"
    validate_config(copy.deepcopy(cfg))  # per-strategy lr (scratch, lora, equitrain) is allowed
    cfg["finetune"]["strategy_params"]["scratch"]["max_num_epochs"] = 50
    with pytest.raises(ConfigError, match=r"strategy_params.scratch: max_num_epochs must be the same for every "
                                          r"strategy under finetune.recipe matched"):
        validate_config(cfg)
    cfg = demo_config()
    cfg["finetune"]["lr_grid"] = [1e-3, 1e-3]
    with pytest.raises(ConfigError, match="lr_grid"):
        validate_config(cfg)


def test_a_strategy_checks_its_options_under_the_recipe():
    cfg = demo_config()
    cfg["finetune"]["recipe"] = "study"  # (the demo trains under matched)
    cfg["finetune"]["strategy_params"]["scratch"]["E0s"] = "foundation"
    with pytest.raises(ConfigError, match=r"strategy_params.scratch: E0s foundation: mace_run_train"):
        validate_config(copy.deepcopy(cfg))
    cfg["finetune"]["recipe"] = "matched"
    validate_config(cfg)


def test_lr_grid_multiplies_the_finetune_job_runtime():
    from phononft.config import job_runtimes

    cfg = validate_config(demo_config())
    one = job_runtimes(cfg)["finetune"][0]
    cfg["finetune"]["lr_grid"] = [1e-3, 3e-3, 1e-2]
    assert job_runtimes(cfg)["finetune"][0] == 3 * one


def test_selections_multiply_the_finetune_and_evaluate_job_runtimes():
    """One finetune / evaluate job holds every selection x budget x seed of a material x strategy."""
    from phononft.config import job_runtimes

    cfg = validate_config(demo_config())
    before = job_runtimes(cfg)
    cfg["selections"] = ["random", "fps"]
    after = job_runtimes(cfg)
    assert after["finetune"][0] == 2 * before["finetune"][0] and after["evaluate"][0] == 2 * before["evaluate"][0]
    assert "selections x budgets x seeds" in after["finetune"][1]
    cfg["cluster"]["max_runtime"] = after["finetune"][0] - 1  # the job no longer fits the partition: refused
    with pytest.raises(ConfigError, match=r"finetune: .*finetune.runtime"):
        validate_config(cfg)


DUMMY = '''
"""A strategy added by a test: one module, nothing else touched."""
from phononft.strategies.base import Option, Strategy


class Dummy(Strategy):
    name = "dummy"
    trains = "the readouts only, for a test"
    color, marker, order = "#123456", "d", 50
    options = (Option("sharpness", "number", 1.5, "how sharp", "eV", minimum=0),)

    def adapt(self, model, opts, ctx):
        raise NotImplementedError


STRATEGY = Dummy()
'''


@pytest.fixture
def dummy_strategy(tmp_path):
    """A strategy module ``dummy`` dropped into the package's path at runtime (removed afterwards)."""
    folder = tmp_path / "more_strategies"
    folder.mkdir()
    (folder / "dummy.py").write_text(textwrap.dedent(DUMMY))
    strategies.__path__.append(str(folder))
    try:
        strategies.discover()
        yield strategies.get("dummy")
    finally:
        strategies.__path__.remove(str(folder))
        sys.modules.pop("phononft.strategies.dummy", None)
        strategies.discover()
    assert "dummy" not in strategies.names()


def test_adding_a_strategy_is_adding_one_module(dummy_strategy):
    from phononft.figures import style

    assert strategies.names()[-1] == "dummy" and "dummy" in strategies.trained()
    cfg = demo_config()
    cfg["strategies"] = ["pretrained", "naive", "dummy"]
    cfg["finetune"]["strategy_params"]["dummy"] = {"sharpness": 2.0, "lr": 0.02}
    validate_config(cfg)
    assert strategy_params(cfg, "dummy")["sharpness"] == 2.0 and strategy_params(cfg, "dummy")["lr"] == 0.02
    cfg = demo_config()
    cfg["strategies"] = ["pretrained", "dummy"]
    cfg = validate_config(cfg)
    assert strategy_params(cfg, "dummy")["sharpness"] == 1.5  # its default, from its module
    cfg = demo_config()
    cfg["finetune"]["strategy_params"]["dummy"] = {"sharpnes": 2.0}
    with pytest.raises(ConfigError, match=r"did you mean 'sharpness'"):
        validate_config(cfg)
    assert style.strategy_style("dummy") == ("dummy", "#123456", "d")
    assert style.ordered_strategies(["dummy", "naive"]) == ["naive", "dummy"]


# ---- pulls toward the foundation ----------------------------------------------------------------------

def _mlp(width: int):
    import torch

    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(3, width), torch.nn.SiLU(), torch.nn.Linear(width, 1)).double()


@pytest.mark.parametrize("shift", [1e-3, 0.05])
def test_l2sp_penalty_of_a_uniform_shift_is_independent_of_the_model_size(shift):
    """The same lambda pulls a model twice as large as hard: a uniform shift c of every weight costs
    lambda x c^2, whatever the parameter count."""
    import torch

    from phononft.l2sp import L2SPPenalty

    lam, values = 50.0, []
    for width in (16, 33):  # 81 and 166 weights: about twice as many
        model = _mlp(width)
        penalty = L2SPPenalty(model, lam)
        with torch.no_grad():
            for p in model.parameters():
                p.add_(shift)
        values.append(penalty().item())
    assert values[0] == pytest.approx(lam * shift**2, rel=1e-9)
    assert values[1] == pytest.approx(values[0], rel=1e-9)


def test_delta_decay_is_adamw_weight_decay_on_the_deltas():
    """Equitrain's delta fine-tuning (w = w0 + delta, AdamW decay on delta) and DeltaDecay on plain weights
    (AdamW without decay) take identical steps."""
    import torch

    from phononft.l2sp import DeltaDecay

    g = torch.Generator().manual_seed(1)
    x, y = torch.randn(8, 3, generator=g, dtype=torch.float64), torch.randn(8, 1, generator=g, dtype=torch.float64)
    plain, base = _mlp(16), _mlp(16)
    w0 = [p.detach().clone() for p in base.parameters()]
    deltas = [torch.zeros_like(p, requires_grad=True) for p in w0]
    decay, lr = 0.3, 0.05
    opt_plain = torch.optim.AdamW(plain.parameters(), lr=lr, weight_decay=0.0)
    opt_delta = torch.optim.AdamW(deltas, lr=lr, weight_decay=decay)
    hook = DeltaDecay(plain, decay)

    def forward_delta():
        h = torch.nn.functional.linear(x, w0[0] + deltas[0], w0[1] + deltas[1])
        return torch.nn.functional.linear(torch.nn.functional.silu(h), w0[2] + deltas[2], w0[3] + deltas[3])

    for _ in range(5):
        opt_plain.zero_grad()
        ((plain(x) - y) ** 2).mean().backward()
        hook(opt_plain)
        opt_plain.step()
        opt_delta.zero_grad()
        ((forward_delta() - y) ** 2).mean().backward()
        opt_delta.step()
    for p, a, d in zip(plain.parameters(), w0, deltas):
        torch.testing.assert_close(p.detach(), a + d.detach(), rtol=0, atol=1e-12)
    assert any(d.abs().max() > 1e-3 for d in deltas)  # it moved
