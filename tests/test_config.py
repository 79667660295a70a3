"""Bad SCAE configs fail before training with one ConfigError line that names the problem."""

import dataclasses
from pathlib import Path

import pytest
import yaml

from scae_hash.config import HeadConfig, LossConfig, SCAEConfig, load_config
from scae_hash.errors import ConfigError
from scae_hash.model.terms import HEAD_TERMS, LOSS_TERMS

CONFIGS = Path(__file__).resolve().parents[1] / "experiments" / "configs"


def write(tmp_path: Path, mapping: dict, name: str = "config.yaml") -> Path:
    path = tmp_path / name
    path.write_text(yaml.safe_dump(mapping))
    return path


def fails_with(tmp_path: Path, mapping: dict, *fragments: str) -> None:
    with pytest.raises(ConfigError) as error:
        load_config(write(tmp_path, mapping))
    message = str(error.value)
    assert "\n" not in message
    for fragment in fragments:
        assert fragment in message, message


@pytest.mark.parametrize("path", sorted(CONFIGS.rglob("*.yaml")), ids=lambda p: p.name)
def test_shipped_configs_load(path: Path):
    from scae_hash.experiment import load_method_config

    config = load_method_config(path)
    if isinstance(config, SCAEConfig):
        assert SCAEConfig.from_dict(config.to_dict()) == config
    else:  # another method's config (experiments/configs/manifold/)
        assert config.method == "scae-manifold" and config.to_dict()["dataset"] == config.dataset


def test_defaults_and_round_trip(tmp_path: Path):
    config = load_config(write(tmp_path, {"dataset": "fashion"}))
    assert config.image_shape == (28, 28, 1)
    assert config.to_dict()["loss"]["temperature"] == 0.5


def test_unknown_key_names_key_and_section(tmp_path: Path):
    fails_with(tmp_path, {"dataset": "mnist", "model": {"chanels": [8]}}, "model.chanels", "model")
    fails_with(tmp_path, {"dataset": "mnist", "optimiser": {}}, "optimiser", "top level")


def test_negative_loss_weight(tmp_path: Path):
    fails_with(tmp_path, {"dataset": "mnist", "loss": {"balance": -0.1}}, "loss.balance", ">= 0")


def test_a_trained_head_on_another_representation_needs_the_head_stage(tmp_path: Path):
    mapping = {"dataset": "mnist", "model": {"representation": "hidden"}}
    fails_with(tmp_path, mapping, "hidden", "head.epochs")
    mapping["finetune"] = {"hash_head": "itq"}
    load_config(write(tmp_path, mapping))
    mapping["finetune"] = {"hash_head": "itq_finetuned"}
    fails_with(tmp_path, mapping, "itq_finetuned", "head.epochs")
    mapping["head"] = {"epochs": 2}
    load_config(write(tmp_path, mapping))


def test_cluster_export_needs_the_cluster_term_and_no_joint_code_terms(tmp_path: Path):
    mapping = {"dataset": "mnist", "model": {"cluster_export": 1.0}, "finetune": {"hash_head": "itq"}}
    fails_with(tmp_path, mapping, "loss.cluster")
    mapping["loss"] = {"cluster": 1.0, "clusters": 1}
    fails_with(tmp_path, mapping, "loss.clusters")
    mapping["loss"] = {"cluster": 1.0}
    fails_with(tmp_path, mapping, "joint code terms", "quantization")
    mapping["loss"].update(quantization=0, balance=0, similarity=0)
    mapping["model"]["decoder_input"] = "features"
    config = load_config(write(tmp_path, mapping))
    assert config.model_hyperparameters()["clusters"] == 10


@pytest.mark.parametrize("section, terms", [(LossConfig, LOSS_TERMS), (HeadConfig, HEAD_TERMS)])
def test_every_loss_term_is_a_weight_of_its_config_section(section, terms):
    """The model reads its terms' names from scae_hash.model.terms and the config its weights
    by those names: a term added there without a weight here would fail every config."""
    weights = {field.name for field in dataclasses.fields(section) if field.type == "float"}
    assert set(terms) <= weights


@pytest.mark.parametrize("bits", [4, 300])
def test_bits_out_of_range(tmp_path: Path, bits: int):
    fails_with(tmp_path, {"dataset": "mnist", "bits": [32, bits]}, "bits", "8..256", str(bits))


def test_scale_that_shrinks_a_feature_map_to_nothing(tmp_path: Path):
    mapping = {"dataset": "mnist", "model": {"block_channels": [8, 8, 8], "scales": [1.0, 0.25]}}
    fails_with(tmp_path, mapping, "model.scales", "0.25", "7 px")
    mapping["model"].update(block_channels=[8, 8], fused_depths=[1, 2])
    load_config(write(tmp_path, mapping))  # two blocks fit in 7 px


def test_missing_or_unknown_dataset(tmp_path: Path):
    fails_with(tmp_path, {"model": {"feature_dim": 32}}, "dataset", "missing")
    fails_with(tmp_path, {"dataset": "svhn"}, "svhn", "known: mnist")


@pytest.mark.parametrize(
    "mapping, fragments",
    [
        ({"pretrain": {"epochs_per_block": "two"}}, ("pretrain.epochs_per_block", "int")),
        ({"augment": {"enabled": "yes please"}}, ("augment.enabled", "bool")),
        ({"model": {"scales": 0.5}}, ("model.scales", "list")),
        ({"finetune": {"schedule": "step"}}, ("finetune.schedule", "cosine")),
        ({"model": "big"}, ("'model' must be a mapping",)),
    ],
)
def test_wrong_types(tmp_path: Path, mapping: dict, fragments: tuple[str, ...]):
    fails_with(tmp_path, {"dataset": "mnist", **mapping}, *fragments)


def test_missing_file_and_bad_yaml(tmp_path: Path):
    with pytest.raises(ConfigError, match="not found"):
        load_config(tmp_path / "nope.yaml")
    (tmp_path / "bad.yaml").write_text("dataset: [unclosed")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(tmp_path / "bad.yaml")


def test_extends_and_overrides(tmp_path: Path):
    write(tmp_path, {"dataset": "mnist", "loss": {"balance": 0.3}}, "base.yaml")
    child = write(tmp_path, {"extends": "base.yaml", "pretrain": {"enabled": False}}, "child.yaml")
    config = load_config(child, overrides=["loss.contrastive=0", "model.scales=[1.0]"])
    assert (config.pretrain.enabled, config.loss.balance) == (False, 0.3)
    assert (config.loss.contrastive, config.model.scales) == (0.0, [1.0])
    with pytest.raises(ConfigError, match="key.path=value"):
        load_config(child, overrides=["loss.contrastive"])


def test_every_yaml_file_is_a_mapping_or_one_error_line(tmp_path):
    from scae_hash.checks import read_yaml_mapping

    with pytest.raises(ConfigError, match="targets file not found: "):
        read_yaml_mapping(tmp_path / "none.yaml", "targets file")
    (tmp_path / "list.yaml").write_text("- a\n- b\n")
    with pytest.raises(ConfigError, match="list.yaml: the top level must be a mapping"):
        read_yaml_mapping(tmp_path / "list.yaml")
    (tmp_path / "binary.yaml").write_bytes(b"\xff\xfe\x00bad")
    with pytest.raises(ConfigError, match="binary.yaml: not valid YAML"):
        read_yaml_mapping(tmp_path / "binary.yaml")
    (tmp_path / "empty.yaml").write_text("")
    assert read_yaml_mapping(tmp_path / "empty.yaml") == {}
