import json
import math
import statistics

import pytest

from smfd.fileio import atomic_write_gzip, read_text_or_gz
from smfd.score.compare import compare, read_draws, read_rows, sign_test


def _write(folder, rows, seed=None):
    folder.mkdir()
    lines = ["id,path,psnr,niqe,id_rank1"] + [f"{i},{i}.png,{p},{n},{r}" for i, p, n, r in rows]
    (folder / "per_image.csv").write_text("\n".join(lines) + "\n")
    if seed is not None:
        (folder / "summary.json").write_text(json.dumps({"info": {"degradation_seed": seed}, "metrics": {}}))
    return folder


def test_sign_test_matches_the_binomial_distribution():
    assert sign_test(0, 0) == 1.0
    assert sign_test(0, 5) == pytest.approx(2 / 32)  # both tails of 5 coin flips all one way
    assert sign_test(19, 55) == pytest.approx(0.0298, abs=5e-4)
    assert sign_test(10, 20) == 1.0


def test_pairs_faces_by_id_and_counts_identification_changes(tmp_path):
    a = _write(tmp_path / "a", [("1", 20, 5, 1), ("2", 22, 6, 0), ("3", 24, 7, 1), ("4", 26, "nan", 0)])
    b = _write(tmp_path / "b", [("2", 23, 5, 1), ("1", 21, 5, 0), ("3", 23, 8, 0), ("5", 30, 1, 1)])
    s = compare(read_rows(a), read_rows(b))
    assert (s["n"], s["only_a"], s["only_b"]) == (3, 1, 1)
    psnr = s["metrics"]["psnr"]
    assert psnr["diff"] == pytest.approx((1 + 1 - 1) / 3)
    assert psnr["b_higher"] == pytest.approx(2 / 3)
    assert psnr["se"] == pytest.approx(math.sqrt(4 / 3) / math.sqrt(3))
    assert s["metrics"]["niqe"]["lower_is_better"]
    r = s["rank1"]
    assert (r["lost"], r["gained"]) == (2, 1)
    assert r["p"] == pytest.approx(sign_test(1, 3))


def test_cli_prints_the_table_and_names_a_missing_folder(tmp_path, run_cli):
    a = _write(tmp_path / "a", [("1", 20, 5, 1), ("2", 22, 6, 0)])
    b = _write(tmp_path / "b", [("1", 21, 5, 1), ("2", 23, 6, 1)])
    res = run_cli(["compare", str(a), str(b), "-o", str(tmp_path / "c.md")])
    assert res.code == 0, res.err
    assert "| psnr | 21.0000 | 22.0000 | +1.0000 |" in res.out
    assert "0 faces identified by A only, 1 by B only" in (tmp_path / "c.md").read_text()
    res = run_cli(["compare", str(tmp_path / "missing"), str(b)])
    assert res.code == 2
    assert "missing/per_image.csv: not found" in res.err and "Traceback" not in res.err


def test_infinite_scores_are_left_out_and_counted_and_the_same_scores_twice_are_refused(tmp_path, run_cli):
    a = _write(tmp_path / "a", [("1", 20, 5, 1), ("2", "inf", 6, 0), ("3", 24, "nan", 1), ("4", 26, 7, 0)])
    b = _write(tmp_path / "b", [("1", 21, 5, 1), ("2", "inf", 5, 1), ("3", 25, 8, 0), ("4", "inf", 7, 0)])
    s = compare(read_rows(a), read_rows(b))
    psnr = s["metrics"]["psnr"]
    assert (psnr["n"], psnr["infinite"], psnr["not_scored"]) == (2, 2, 0)
    assert psnr["diff"] == pytest.approx(1.0) and math.isfinite(psnr["a"]) and math.isfinite(psnr["se"])
    res = run_cli(["compare", str(a), str(b)])
    assert res.code == 0, res.err
    assert "inf" not in res.out.split("\n\n")[1] and "nan" not in res.out  # the table holds numbers only
    assert "psnr: over 2 of the 4 faces; left out: 2 scored infinite in A or B" in res.out
    assert "niqe: over 3 of the 4 faces; left out: 1 not scored in A or B." in res.out
    res = run_cli(["compare", str(a), str(a)])
    assert res.code == 2 and "A and B hold the same scores for all 4 faces" in res.err


def test_several_draws_pair_by_seed_and_count_each_face_once(tmp_path, run_cli):
    # face 1 is identified by B in both draws and by A in neither; face 2 by A in draw 0 only, by B in draw 1 only
    a0 = _write(tmp_path / "a0", [("1", 20, 5, 0), ("2", 22, 6, 1), ("3", 24, 7, 1)], seed=0)
    a1 = _write(tmp_path / "a1", [("1", 21, 5, 0), ("2", 23, 6, 0), ("3", 25, 7, 1)], seed=1)
    b0 = _write(tmp_path / "b0", [("1", 21, 5, 1), ("2", 22, 6, 0), ("3", 24, 7, 1)], seed=0)
    b1 = _write(tmp_path / "b1", [("1", 24, 5, 1), ("2", 23, 6, 1), ("3", 25, 7, 1)], seed=1)
    s = compare(read_draws(f"{a0},{a1}"), read_draws(f"{b0},{b1}"))
    assert (s["n"], s["faces"]) == (6, 3)
    psnr = s["metrics"]["psnr"]
    assert psnr["diff"] == pytest.approx(4 / 6)
    per_face = [2.0, 0.0, 0.0]  # face means over their two draws: the SE is over 3 faces, not 6 draws
    assert psnr["se"] == pytest.approx(statistics.stdev(per_face) / math.sqrt(3))
    r = s["rank1"]
    assert (r["lost"], r["gained"], r["faces_a"], r["faces_b"]) == (1, 3, 0, 1)
    assert r["p"] == pytest.approx(sign_test(1, 1))
    assert read_draws(a0) == read_rows(a0)  # one folder: its own ids
    res = run_cli(["compare", f"{a0},{a1}", f"{b0},{b1}"])
    assert res.code == 0, res.err
    assert "6 draws of 3 faces scored in both" in res.out and "0 faces identified more often by A, 1 by B" in res.out
    assert "draws where B is higher" in res.out
    res = run_cli(["compare", f"{a0},{a1}", f"{b0},{b1},{b0}"])
    assert res.code == 2 and "A lists 2 evaluation(s) and B 3" in res.err
    res = run_cli(["compare", f"{a0},{a1}", f"{b1},{b0}"])  # draws paired across seeds
    assert res.code == 2 and "scored with one seed: A [0, 1], B [1, 0]" in res.err
    res = run_cli(["compare", f"{a0},{a0}", f"{b0},{b0}"])
    assert res.code == 2 and "share a degradation seed" in res.err


def test_an_id_with_an_at_sign_stays_one_face(tmp_path):
    a = _write(tmp_path / "a", [("img@1", 20, 5, 1), ("img@2", 22, 6, 0)])
    b = _write(tmp_path / "b", [("img@1", 21, 5, 1), ("img@2", 24, 6, 1)])
    s = compare(read_rows(a), read_rows(b))
    assert s["faces"] == s["n"] == 2 and s["metrics"]["psnr"]["diff"] == pytest.approx(1.5)


def test_a_kept_gzipped_table_reads_as_the_plain_one(tmp_path):
    plain = _write(tmp_path / "plain", [("1", 20, 5, 1), ("2", 22, 6, 0)])
    packed = tmp_path / "packed"
    packed.mkdir()
    atomic_write_gzip(packed / "per_image.csv.gz", (plain / "per_image.csv").read_bytes())
    assert read_rows(packed) == read_rows(plain)


def test_the_plain_table_is_read_first_and_a_missing_or_damaged_one_is_named(tmp_path):
    (tmp_path / "t.csv").write_text("plain\n")
    atomic_write_gzip(tmp_path / "t.csv.gz", b"packed\n")
    assert read_text_or_gz(tmp_path / "t.csv") == "plain\n"
    (tmp_path / "t.csv").unlink()
    assert read_text_or_gz(tmp_path / "t.csv") == "packed\n"
    with pytest.raises(FileNotFoundError, match="none.csv: not found"):
        read_text_or_gz(tmp_path / "none.csv")
    (tmp_path / "bad.csv.gz").write_bytes(b"not gzip")
    with pytest.raises(ValueError, match="bad.csv.gz: not a readable"):
        read_text_or_gz(tmp_path / "bad.csv")
