"""The sweep-trial protocol (clara_hydra.sweep.protocol): what a worker writes, the sweeper reads."""

from __future__ import annotations

import pytest

from clara_hydra.sweep import protocol as P


@pytest.mark.parametrize("state,kw", [
    pytest.param(P.COMPLETE, {"value": 0.75}, id="complete"),
    pytest.param(P.PRUNED, {"reason": "pruned at epoch 2"}, id="pruned"),
    pytest.param(P.FAIL, {"reason": "error: x.json: train.model: boom"}, id="fail"),
])
def test_a_worker_outcome_reads_back(tmp_path, monkeypatch, state, kw):
    """The outcome names its study and trial: a sweep that recovers a trial after a crash reads
    only that trial's outcome, never an earlier sweep's in the same folder."""
    path = tmp_path / P.RESULT_FILE
    monkeypatch.setenv(P.ENV_RESULT, str(path))
    monkeypatch.setenv(P.ENV_STUDY, "s")
    monkeypatch.setenv(P.ENV_TRIAL, "3")
    assert P.in_worker()
    P.write_outcome(state, **kw)
    assert P.read_outcome(path) == {"state": state, "study": "s", "trial": "3", **kw}
    assert P.read_outcome(path, study="s", trial=3) == P.read_outcome(path)
    assert P.read_outcome(path, study="s", trial=4) is None and P.read_outcome(path, study="t", trial=3) is None
    assert not (tmp_path / (P.RESULT_FILE + ".tmp")).exists()


def test_a_sweep_job_writes_its_outcome_into_the_folder_it_is_given(tmp_path, monkeypatch):
    """An in-process job (no worker's file) writes where its sweep will look for it after a crash."""
    monkeypatch.delenv(P.ENV_RESULT, raising=False)
    P.write_outcome(P.COMPLETE, value=1.0, path=P.outcome_file(str(tmp_path)))
    assert P.read_outcome(tmp_path / P.RESULT_FILE)["value"] == 1.0


@pytest.mark.parametrize("text", [pytest.param(None, id="missing"), pytest.param("{", id="truncated"),
                                  pytest.param('{"state": "maybe"}', id="unknown-state"),
                                  pytest.param("[1]", id="not-an-object")])
def test_no_outcome_is_none(tmp_path, text):
    path = tmp_path / P.RESULT_FILE
    if text is not None:
        path.write_text(text)
    assert P.read_outcome(path) is None


def test_outside_a_worker_nothing_is_written(tmp_path, monkeypatch):
    monkeypatch.delenv(P.ENV_RESULT, raising=False)
    monkeypatch.chdir(tmp_path)
    assert not P.in_worker()
    P.write_outcome(P.COMPLETE, value=1.0)
    assert list(tmp_path.iterdir()) == []
