import pytest
from hydra.errors import ConfigCompositionException, MissingConfigException
from omegaconf import OmegaConf
from omegaconf.errors import ConfigAttributeError, ConfigKeyError, ValidationError

from lga.attention import attention_options, list_attentions
from lga.backbones import BACKBONES
from tests.conftest import ROOT


def test_default_config_composes(compose_cfg):
    cfg = compose_cfg()
    assert (cfg.dataset.name, cfg.attention.name) == ("mnist_5k", "lga")
    assert cfg.backbone._target_ == "lga.backbones.mobilenetv3.MobileNetV3"
    assert cfg.model._target_ == "lga.models.classification.ClassificationModule" and cfg.model._partial_
    assert cfg.trainer.max_epochs == 10 and cfg.logger._target_ == "lga.loggers.wandb_loggers"


def _schemas_of(yaml_path) -> list[str]:
    """The schemas a group option's yaml builds on: its defaults entries /schema/<group>/<name>@..."""
    defaults = OmegaConf.load(yaml_path).get("defaults", [])
    return [str(d).split("/")[-1].split("@")[0] for d in defaults if str(d).startswith("/schema/")]


def test_config_groups_map_one_to_one_to_registries():
    """In every group that builds an object, each yaml builds on registered constructors only, and each
    registered constructor has a yaml (an attention block its own, by name)."""
    from lga.schemas import registries

    for registry in registries():
        yamls = sorted((ROOT / "conf" / registry.group).glob("*.yaml"))
        used = {name for path in yamls for name in _schemas_of(path)}
        assert used <= {*registry.names(), "external"}, f"conf/{registry.group} builds on unregistered schemas"
        assert set(registry.names()) <= used, (
            f"registered {registry.group} without a yaml: {set(registry.names()) - used}"
        )
    # external.yaml: a block from outside lga (lga.attention.external), by import path, not a registry name
    assert sorted(p.stem for p in (ROOT / "conf/attention").glob("*.yaml")) == sorted([*list_attentions(), "external"])


def test_an_attention_preset_cannot_be_redefined():
    from lga.attention import preset_options, register_attention_preset

    register_attention_preset("la", "lga", **preset_options("la"))  # the same meaning again: allowed
    with pytest.raises(ValueError, match="'la' is already registered with options"):
        register_attention_preset("la", "lga", fusion="softmax")
    with pytest.raises(ValueError, match="'lga' is already registered with options"):
        register_attention_preset("lga", "lga", fusion="softmax")


def test_a_task_module_is_registered_under_its_task():
    from lga.models import MODELS

    assert all(module.task == name for name, module in MODELS.items())


def test_callbacks_turn_off_with_null_and_a_users_one_is_added(compose_cfg):
    from lightning.pytorch.callbacks import EarlyStopping

    from lga.build import configured_callbacks
    from lga.callbacks import EpochLine, LGAWeights

    cfg = compose_cfg(
        "callbacks.lr_monitor=null", "+callbacks.early._target_=lightning.pytorch.callbacks.EarlyStopping",
        "+callbacks.early.monitor=val/top1", "+callbacks.early.mode=max",
    )  # fmt: skip
    built = configured_callbacks(cfg, with_loggers=True)
    assert [type(c) for c in built] == [EpochLine, LGAWeights, EarlyStopping] and built[2].monitor == "val/top1"
    with pytest.raises(ConfigCompositionException):  # a typed entry refuses an option its class lacks
        compose_cfg("callbacks.lr_monitor.logging_intervall=step")


def test_the_wandb_logger_is_the_one_the_summary_run_looks_for():
    from lga.analysis.wandb_compare import WANDB_LOGGER
    from lga.loggers import LOGGERS

    target = LOGGERS.get("wandb")
    assert f"{target.__module__}.{target.__qualname__}" == WANDB_LOGGER


def test_a_registry_names_the_valid_entries_and_refuses_a_second_meaning():
    from lga.models.schedules import OPTIMIZERS

    with pytest.raises(ValueError, match="unknown optimizer 'adamx'; valid names: adam, adamw, sgd"):
        OPTIMIZERS.get("adamx")
    with pytest.raises(ValueError, match="already registered"):
        OPTIMIZERS.register("adam", pytest.raises)


@pytest.mark.parametrize("option", sorted(p.stem for p in (ROOT / "conf/backbone").glob("*.yaml")))
def test_backbone_yamls_compose(compose_cfg, option):
    from hydra.utils import get_class

    assert get_class(compose_cfg(f"backbone={option}").backbone._target_) in dict(BACKBONES.items()).values()


def test_paper_scale_experiment(compose_cfg):
    cfg = compose_cfg("experiment=paper_scale")
    assert cfg.backbone.width_mult == 0.75 and cfg.model.head_channels == 1280 and "paper_scale" in cfg.tags


@pytest.mark.parametrize("task", ["classification", "detection"])
def test_released_experiment_puts_the_released_block_on_the_24_channel_stride_32_map(compose_cfg, task):
    """experiment=released: the released placement; the block adds exactly its released 14,358 parameters."""
    from hydra.utils import instantiate

    from lga.train import build_model

    params = {}
    for attention in ("none", "lga_released"):
        cfg = compose_cfg("experiment=released", f"task={task}", f"attention={attention}")
        model = build_model(cfg, instantiate(cfg.dataset))
        params[attention] = model.cost["params"]
        backbone = model.backbone if task == "classification" else model.detector.backbone.body
        assert (backbone.out_channels[-1], backbone.strides[-1]) == (24, 32)
    assert params["lga_released"] - params["none"] == 14_358


@pytest.mark.parametrize("name", list_attentions())
def test_attention_yaml_is_validated_by_its_schema(compose_cfg, name):
    cfg = compose_cfg(f"attention={name}")
    assert cfg.attention.name == name
    assert set(cfg.attention) - {"name", "_target_", "_partial_", "_convert_"} == set(attention_options(name))


def test_unknown_attention_lists_the_valid_ones(compose_cfg):
    with pytest.raises(MissingConfigException) as err:
        compose_cfg("attention=lgaa")
    assert "attention/lgaa" in str(err.value)
    assert set(err.value.options) >= {"lga", "se", "cbam", "none"}


def test_wrong_type_names_the_key(compose_cfg):
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg("trainer.max_epochs=abc")
    cause = err.value.__cause__
    assert isinstance(cause, ValidationError) and cause.full_key == "trainer.max_epochs"


@pytest.mark.parametrize(
    "override, key", [("attention.num_head=4", "attention.num_head"), ("trainer.max_epoch=3", "trainer.max_epoch")]
)
def test_mistyped_key_names_the_key(compose_cfg, override, key):
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg(override)
    assert isinstance(err.value.__cause__, (ConfigKeyError, ConfigAttributeError))
    assert err.value.__cause__.full_key == key


def test_attention_option_types_are_checked(compose_cfg):
    with pytest.raises(ConfigCompositionException) as err:
        compose_cfg("attention.num_heads=six")
    assert err.value.__cause__.full_key == "attention.num_heads"


def test_run_dirs_have_sub_second_resolution(compose_cfg):
    cfg = compose_cfg()
    assert cfg.hydra.run.dir.endswith("%f}") or "%f" in str(cfg.hydra.run._get_node("dir")._value())


def test_slurm_launcher_settings_are_configurable(compose_cfg):
    cfg = compose_cfg("hydra/launcher=slurm", "hydra.launcher.partition=gpu", "hydra.launcher.gpus_per_node=2")
    launcher = cfg.hydra.launcher
    assert launcher._target_.endswith("SlurmLauncher")
    assert (launcher.partition, launcher.gpus_per_node, launcher.cpus_per_task, launcher.timeout_min) == (
        "gpu",
        2,
        2,
        60,
    )
