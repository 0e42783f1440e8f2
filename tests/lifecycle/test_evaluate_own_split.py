"""`smsguard evaluate` re-makes the model's own validation split: a data file added after the
model was trained (a blind set committed once scored) is left out, or the split would move and
put rows the model trained on into validation; a changed training file is warned about."""
from __future__ import annotations

import json
import shutil

from app.training.evaluate import evaluate_model


def _copy(tiny, tmp_path):
    model = tmp_path / "model"
    shutil.copytree(tiny.good, model)  # evaluate rewrites the card: never the session's model
    data = tmp_path / "data"
    shutil.copytree(tiny.data, data)
    return model, data


def test_files_added_after_training_are_left_out_of_the_split(tiny, tmp_path):
    model, data = _copy(tiny, tmp_path)
    logs: list[str] = []
    own = evaluate_model(model, train_dir=tiny.train, data_dir=data, log=logs.append)["summary"]
    assert not any("differ" in m or "left out" in m for m in logs)
    # a blind set written and committed after the model was trained
    (data / "blind").mkdir()
    rows = [{"text": f"快递到了城{'东西南北'[i % 4]}第{i}号柜，取件码{1000 + i}", "labels": []} for i in range(60)]
    (data / "blind" / "2026-12-06z_legit.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    logs.clear()
    again = evaluate_model(model, train_dir=tiny.train, data_dir=data, log=logs.append)["summary"]
    assert any("left out 1 data file(s) added since the model was trained (data/blind/2026-12-06z_legit.jsonl)"
               in m for m in logs)
    assert again["validation_rows"] == own["validation_rows"] and again["normal_rows"] == own["normal_rows"]


def test_a_changed_training_file_is_warned_about(tiny, tmp_path):
    model, data = _copy(tiny, tmp_path)
    with open(data / "zh_written.jsonl", "a", encoding="utf-8") as fh:
        fh.write(json.dumps({"text": "周末一起去公园散步吧", "labels": []}, ensure_ascii=False) + "\n")
    logs: list[str] = []
    evaluate_model(model, train_dir=tiny.train, data_dir=data, log=logs.append)
    assert any("warning: data differ from the training data (data/zh_written.jsonl)" in m
               and "may hold rows the model trained on" in m for m in logs)
