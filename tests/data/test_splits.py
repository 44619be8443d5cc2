import pytest

from smfd.data import Splits, make_splits

IDS = [f"{i:05d}" for i in range(100)]


def test_split_is_deterministic_disjoint_and_complete(tmp_path):
    s = make_splits(IDS, seed=3)
    assert s == make_splits(list(reversed(IDS)), seed=3)
    assert s != make_splits(IDS, seed=4)
    assert len(s.test) == 20 and len(s.folds) == 5 and all(len(f) == 16 for f in s.folds)
    assert sorted([*s.test, *s.trainval]) == IDS
    train, val = s.fold(2)
    assert set(train).isdisjoint(val) and set(train).isdisjoint(s.test) and len(train) == 64
    path = s.save(tmp_path / "split.json")
    assert Splits.load(path) == s


def test_subset():
    s = make_splits(IDS, seed=0, subset=50)
    assert len(s.test) == 10 and len(s.trainval) == 40


def test_bad_split_arguments(tmp_path):
    with pytest.raises(ValueError, match="subset"):
        make_splits(IDS, subset=101)
    with pytest.raises(ValueError, match="folds"):
        make_splits(IDS[:3], folds=5)
    with pytest.raises(ValueError, match="fold must be"):
        make_splits(IDS).fold(5)
    (tmp_path / "bad.json").write_text("{}")
    with pytest.raises(ValueError, match="not a split file"):
        Splits.load(tmp_path / "bad.json")
