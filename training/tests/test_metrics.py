"""Telemetry's progress bar appears with the first finished step, so an error before it stays the only line."""

from more_training.metrics import Telemetry


def test_the_progress_bar_waits_for_the_first_step(tmp_path, capsys):
    telemetry = Telemetry(tmp_path, total_steps=10, start_step=0, enabled=True, progress=True, tensorboard=False)
    telemetry.log(0, {"loss": 1.0})
    assert capsys.readouterr().err == ""  # e.g. the data fail to load now: their error would be alone
    telemetry.step()
    telemetry.close()
    assert "1/10" in capsys.readouterr().err
    assert (tmp_path / "metrics.jsonl").read_text().count("\n") == 1
