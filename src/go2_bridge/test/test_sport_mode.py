"""The sport-mode release sequence against scripted motion-switcher answers."""

import json

from go2_bridge.sport_mode import CHECK_MODE, RELEASE_MODE, SPORT_STAND_DOWN, Phase, SportModeRelease


def run(rel, answers, until=60.0, dt=0.1):
    """Poll every dt; answer each CheckMode with the next scripted (code, name) or stay silent (None)."""
    sent = []
    t = 0.0
    answers = list(answers)
    while t < until and rel.phase not in (Phase.DONE, Phase.FAILED):
        req = rel.poll(t)
        if req is not None:
            sent.append((round(t, 1), req.service, req.api_id))
            if req.api_id == CHECK_MODE and answers:
                a = answers.pop(0)
                if a is not None:
                    rel.on_response(CHECK_MODE, a[0], json.dumps({"form": "0", "name": a[1]}))
        t += dt
    return sent


def test_already_released_is_done_after_one_check():
    rel = SportModeRelease()
    assert run(rel, [(0, "")]) == [(0.0, "motion_switcher", CHECK_MODE)]
    assert rel.done


def test_stand_down_then_release_then_check_again():
    rel = SportModeRelease(stand_down_s=3.0, release_wait_s=2.0)
    sent = run(rel, [(0, "normal"), (0, "")])
    assert [s[1:] for s in sent] == [
        ("motion_switcher", CHECK_MODE),
        ("sport", SPORT_STAND_DOWN),
        ("motion_switcher", RELEASE_MODE),
        ("motion_switcher", CHECK_MODE),
    ]
    # stand down waits 3 s before the release; the release waits 2 s before checking again
    assert sent[2][0] - sent[1][0] >= 3.0 and sent[3][0] - sent[2][0] >= 2.0
    assert rel.done


def test_gives_up_when_mode_never_releases():
    rel = SportModeRelease(max_attempts=2, stand_down_s=0.1, release_wait_s=0.1)
    run(rel, [(0, "ai")] * 10)
    assert rel.phase is Phase.FAILED and "still active" in rel.detail


def test_silence_and_errors_are_retried_then_fail():
    rel = SportModeRelease(max_attempts=3, response_timeout_s=0.5)
    sent = run(rel, [None, (3104, "")] + [None] * 5)
    assert rel.phase is Phase.FAILED
    assert sum(1 for s in sent if s[2] == CHECK_MODE) == 4  # first try + 3 retries


def test_garbage_answer_does_not_crash():
    rel = SportModeRelease(max_attempts=1, response_timeout_s=0.5)
    rel.poll(0.0)
    rel.on_response(CHECK_MODE, 0, "{not json")
    rel.poll(0.1)
    assert "unreadable" in rel.detail
