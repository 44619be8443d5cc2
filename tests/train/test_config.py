import pytest

from smfd.train import load_config
from smfd.train.config import config_from_dict


def test_thesis_config_is_the_thesis_protocol():
    m = load_config("configs/thesis.yaml", "mask")
    d = load_config("configs/thesis.yaml", "deblur")
    for c in (m, d):
        assert (c.optim.lr, c.scheduler.factor, c.scheduler.patience, c.scheduler.min_lr) == (1e-3, 0.2, 5, 1e-9)
        assert (c.epochs, c.batch_size, c.early_stop, c.data.size, c.data.folds) == (50, 16, 10, 256, 5)
    assert (m.model.name, m.loss, m.monitor, m.data.subset) == ("mask_generator", "dice", "dice", 3000)
    assert (d.model.name, d.loss, d.monitor, d.data.subset) == ("smfd_unet", "mse", "ssim", 2000)


def test_cpu_config_loads_for_both_tasks():
    for task in ("mask", "deblur"):
        c = load_config("configs/cpu.yaml", task)
        assert c.optim.lr == 1e-3 and c.threads == 1
        assert c.data.train_limit == (600 if task == "mask" else 1200)  # the per-task section wins
        # mask nets on whole faces at their working size; SMFD-UNet on 64 px crops
        assert (c.data.crop, c.model.kwargs.get("work_size")) == ((None, 128) if task == "mask" else (64, None))
        if task == "deblur":  # validated and tested with the training crop's statistics (test-time local statistics)
            assert c.model.kwargs["pool_window"] == c.data.crop


def test_overrides_and_round_trip():
    c = load_config("configs/thesis.yaml", "deblur", ["optim.lr=2e-4", "data.crop=96", "model.kwargs={growth: 4}"],
                    **{"data.root": "/x", "mask_source": "generator:runs/m"})
    assert c.optim.lr == 2e-4 and c.data.crop == 96 and c.model.kwargs == {"growth": 4} and c.data.root == "/x"
    assert config_from_dict(c.to_dict()) == c


@pytest.mark.parametrize("override, match", [
    ("optim.lrr=1", "unknown config key optim.lrr"),
    ("epochs=0", "epochs must be >= 1"),
    ("monitor=accuracy", "monitor must be"),
    ("novalue", "key=value"),
])
def test_bad_overrides(override, match):
    with pytest.raises(ValueError, match=match):
        load_config("configs/thesis.yaml", "deblur", [override])


def test_mask_source_only_for_deblur():
    with pytest.raises(ValueError, match="deblur task only"):
        load_config(None, "mask", ["mask_source=generator:x"])


def test_values_are_typed():
    with pytest.raises(ValueError, match="config key epochs: expected int, got 'many'"):
        load_config(None, "mask", ["epochs=many"])
    with pytest.raises(ValueError, match="config key data.augment: expected bool"):
        load_config(None, "mask", ["data.augment=3"])
    assert load_config(None, "mask", ["data.crop=null"]).data.crop is None


def test_faces_at_several_sizes_are_checked_up_front():
    from smfd.train.config import load_config

    ok = load_config(None, "deblur", ["data.sizes=[256, 512]", "data.crop=256", "data.hires=big",
                                      "data.degradation=mixed"])
    assert ok.data.sizes == (256, 512)
    for sets, match in ((["data.sizes=[256, 512]", "data.hires=big", "data.degradation=mixed"], "data.crop"),
                        (["data.sizes=[512]", "data.degradation=mixed"], "data.hires"),
                        (["data.sizes=[256, 512]", "data.crop=256", "data.hires=big"], "thesis")):
        with pytest.raises(ValueError, match=match):
            load_config(None, "deblur", sets)


def test_a_mask_source_is_read_in_one_place_and_each_reader_takes_its_kinds():
    from smfd.score import MaskSource, parse_mask_source

    assert parse_mask_source("gt") == MaskSource("gt")
    assert parse_mask_source("generator:runs/m:1") == MaskSource("generator", "runs/m:1")  # the first colon splits
    assert str(parse_mask_source("job:masks", ("gt", "generator", "job"))) == "job:masks"
    for text in ("gt:x", "masks", "generator", "job:masks"):  # job: only where a queue accepts it
        with pytest.raises(ValueError, match="must be gt or generator:PATH"):
            parse_mask_source(text)
    with pytest.raises(ValueError, match="mask_source must be gt or generator:PATH, got 'job:m'"):
        load_config(None, "deblur", ["mask_source=job:m"])
