"""Policy node: camera image + instruction -> MoRE policy -> QuadrupedCommand (bins and Q-values), with safety stops.

Inference runs on a worker thread, never on the executor: the image callback only stores the newest frame
(older ones are dropped) and wakes the worker, which starts a decision on that frame at once when the
decision slot is open (`policy_core.Pacer`: at most `rate_hz`, self-synchronised to the camera; a frame that
would have to wait is skipped for the next one). A watchdog timer on the executor, independent of the model,
publishes stop commands as soon as the newest image is older than `image_timeout_s`; a decision whose image
went stale during inference is published as a stop. Stale or malformed images, an instruction with nothing
visible in it and any inference error yield the stop command and an ERROR on /diagnostics; the node never
dies on bad input. It publishes only stop commands until enabled (parameter `enabled` or the std_srvs/SetBool
service on /more/policy/enable). Also publishes PolicyStatus per decision, RViz markers and the annotated
image (when someone listens), all stamped like the command they show.
"""

from __future__ import annotations

import contextlib
import threading
import time
from collections import deque

from rclpy.node import Node
from rclpy.qos_overriding_options import QoSOverridingOptions

from more_common.errors import ConfigurationError
from more_ros import names
from more_ros.convert import command_to_msg, image_msg, ns_to_stamp
from more_ros.diagnostics import ERROR as DIAG_ERROR
from more_ros.diagnostics import OK as DIAG_OK
from more_ros.diagnostics import diagnostic_array
from more_ros.node_main import run_node
from more_ros.params import declare_parameters, positive
from more_vla_policy.checkpoint_path import load_checkpoint_policy
from more_vla_policy.convert import marker_array, raw_image
from more_vla_policy.monitoring import annotate, command_markers
from more_vla_policy.policy_core import (
    STATE_DISABLED,
    STATE_FAULT,
    STATE_NAMES,
    CoreConfig,
    Decision,
    Pacer,
    PolicyCore,
    percentile,
)

NODE_NAME = "policy_node"
# draft: temporal-draft decoding (the previous decision of the same instruction as the draft, verified in window
# passes: exactly greedy's bins, ~3 passes instead of 12); greedy: the KV-cached token-by-token decoder.
DECODERS = ("draft", "greedy")
# More threads than any computer's cores only slows inference; 100000 exhausted the process's thread limit once.
MAX_TORCH_THREADS = 256

PARAMS = {
    "checkpoint": ("", None, "checkpoint directory (empty: $MORE_CHECKPOINT, else the demo checkpoint models/demo)"),
    "device": ("cpu", None, "torch device for the model: cpu, cuda, cuda:0 ..."),
    "torch_threads": (
        0,
        lambda v: 0 <= v <= MAX_TORCH_THREADS,
        f"torch CPU threads for inference, 0..{MAX_TORCH_THREADS} (0: torch's default, one per core)",
    ),
    "rate_hz": (5.0, positive, "maximum decision rate [Hz], > 0"),
    "image_timeout_s": (0.5, positive, "an image older than this [s] stops the robot, > 0"),
    "instruction": ("", None, "the instruction (also settable at run time and on the instruction topic)"),
    "enabled": (False, None, "command motion from the start (else stop commands until enabled)"),
    "hold_on_terminate": (False, None, "after a decoded terminate, stand until the instruction changes"),
    "max_instruction_chars": (1000, positive, "longer instructions are refused (stop), > 0"),
    "image_topic": (names.CAMERA_IMAGE, None, "sensor_msgs/Image input (rgb8, bgr8, rgba8, bgra8)"),
    "publish_markers": (True, None, "publish the RViz MarkerArray"),
    "publish_annotated_image": (True, None, "publish the annotated image (rendered only when subscribed)"),
    "diagnostics_period_s": (1.0, positive, "period of OK diagnostics [s]; faults are reported at once"),
    "warmup": (True, None, "run one decode on a blank image at start-up (first-call cost off the clock)"),
    "decoder": (
        "draft",
        lambda v: v in DECODERS,
        f"one of {list(DECODERS)}: draft = greedy's actions exactly, fewer passes",
    ),
    "merge_attention_lora": (True, None, "fold the attention LoRA into its base weights for inference (faster)"),
}
RUNTIME_PARAMS = ("instruction", "enabled")
LATENCY_WINDOW = 200
# How often the watchdog looks at the newest image's age [s]: a stop goes out within this after the timeout
# (plus executor delay), and the check costs a few microseconds.
WATCHDOG_PERIOD_S = 0.02


class PolicyNode(Node):
    def __init__(self) -> None:
        super().__init__(NODE_NAME)
        from diagnostic_msgs.msg import DiagnosticArray
        from sensor_msgs.msg import Image
        from std_msgs.msg import String
        from std_srvs.srv import SetBool
        from visualization_msgs.msg import MarkerArray

        from more_msgs.msg import PolicyStatus, QuadrupedCommand
        from more_ros.qos import COMMAND_QOS, LATCHED_QOS, OVERRIDABLE, SENSOR_QOS, STATUS_QOS

        p = self.params = declare_parameters(self, PARAMS, live=RUNTIME_PARAMS)
        if p["torch_threads"]:
            import torch

            torch.set_num_threads(p["torch_threads"])
        policy = load_checkpoint_policy(p["checkpoint"], p["device"])
        if p["merge_attention_lora"]:
            policy.merge_attention_lora()
        self._drafts = None
        self._greedy_passes = policy.num_slots  # prefill + one step per further slot (12 by default)
        if p["decoder"] == "draft":
            from more_model.draft_decoder import DraftState

            on_gpu = policy.device.type == "cuda"
            policy = self._drafts = DraftState(policy.action_decoder(cuda_graph=on_gpu))
        try:
            config = CoreConfig(
                image_timeout_s=p["image_timeout_s"],
                max_instruction_chars=p["max_instruction_chars"],
                hold_on_terminate=p["hold_on_terminate"],
            )
        except ValueError as err:
            raise ConfigurationError(str(err)) from err
        self.core = PolicyCore(policy, config)
        self.core.set_instruction(p["instruction"])
        self.core.set_enabled(p["enabled"])
        if p["warmup"]:
            self._warmup(policy)
            if self._drafts is not None:
                self._drafts.reset()

        self._status_type = PolicyStatus
        self._cmd_pub = self.create_publisher(
            QuadrupedCommand, names.COMMAND, COMMAND_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._status_pub = self.create_publisher(
            PolicyStatus, names.POLICY_STATUS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._diag_pub = self.create_publisher(
            DiagnosticArray, names.DIAGNOSTICS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._marker_pub = self.create_publisher(
            MarkerArray, names.MARKERS, STATUS_QOS, qos_overriding_options=OVERRIDABLE
        )
        self._annotated_pub = self.create_publisher(
            Image, names.ANNOTATED_IMAGE, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )

        self._new_frame = threading.Event()
        self._stop = threading.Event()
        # Held while a decision is checked (core.finish / core.watchdog) and published, so worker and watchdog
        # publish in the order they checked: no model command can follow a stop for an older image.
        self._publish_lock = threading.Lock()
        self.create_subscription(
            Image, p["image_topic"], self._on_image, SENSOR_QOS, qos_overriding_options=OVERRIDABLE
        )
        # Two subscriptions: the latched one receives the last instruction published before we started, the
        # volatile one hears publishers that do not latch (a latched reader cannot match those in DDS).
        for entity_id, qos in (("latched", LATCHED_QOS), ("volatile", STATUS_QOS)):
            self.create_subscription(
                String,
                names.INSTRUCTION,
                self._on_instruction,
                qos,
                qos_overriding_options=QoSOverridingOptions.with_default_policies(entity_id=entity_id),
            )
        self.create_service(SetBool, names.POLICY_ENABLE, self._on_enable)
        self.add_on_set_parameters_callback(self._on_set_parameters)

        self._inference_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._latency_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self._start_age_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)  # frame age when a decision starts
        self._publish_ms: deque[float] = deque(maxlen=LATENCY_WINDOW)
        self.faults = 0
        self.watchdog_stops = 0
        self.stale_at_publish = 0
        self._last_diag = -float("inf")
        self._last_state: int | None = None
        self._pacer = Pacer(p["rate_hz"])
        self._watchdog_last = None  # when the watchdog last published (None: image fresh)
        self._watchdog = self.create_timer(min(WATCHDOG_PERIOD_S, config.image_timeout_s / 2), self._on_watchdog)
        self._worker = threading.Thread(target=self._run, name="policy_inference", daemon=True)
        self._worker.start()
        self.get_logger().info(
            f"policy ready: {p['rate_hz']} Hz on {p['image_topic']}, "
            f"{'enabled' if p['enabled'] else 'disabled (call ' + names.POLICY_ENABLE + ')'}"
        )

    # -- inputs (executor thread) ----------------------------------------------------------------------
    def _on_image(self, msg) -> None:  # noqa: ANN001
        self.core.submit_image(raw_image(msg))
        self._new_frame.set()

    def _on_instruction(self, msg) -> None:  # noqa: ANN001
        self.core.set_instruction(msg.data)

    def _on_enable(self, request, response):  # noqa: ANN001
        if self._drafts is not None:
            self._drafts.reset()  # what follows a pause is no continuation of what came before it
        self.core.set_enabled(request.data)
        response.success = True
        response.message = "enabled" if request.data else "disabled: publishing stop commands"
        self.get_logger().info(f"policy {response.message}")
        return response

    def _on_set_parameters(self, params):  # noqa: ANN001
        from rcl_interfaces.msg import SetParametersResult

        for param in params:
            if param.name not in RUNTIME_PARAMS:
                return SetParametersResult(successful=False, reason=f"{param.name} cannot change at run time")
        for param in params:
            if param.name == "instruction":
                self.core.set_instruction(str(param.value))
            elif param.name == "enabled":
                self.core.set_enabled(bool(param.value))
        return SetParametersResult(successful=True)

    # -- the decision loop (worker thread) -------------------------------------------------------------
    def _warmup(self, policy) -> None:  # noqa: ANN001
        import numpy as np

        h, w = getattr(policy, "image_size", (64, 64))
        try:
            policy.decode([np.zeros((h, w, 3), np.uint8)], ["warm up"])
        except Exception as err:  # a broken model is reported per decision; do not die here
            self.get_logger().warning(f"warm-up decode failed: {type(err).__name__}: {err}")

    def _run(self) -> None:
        used = 0  # image_seq of the last frame decided on or skipped
        free_since = self.core.now()  # when the previous decision ended
        while not self._stop.is_set():
            self._new_frame.clear()
            seq, received = self.core.newest_frame()
            if seq == used:
                self._new_frame.wait(0.5)  # the timeout only lets a missed stop() be seen
                continue
            used = seq
            if not self._pacer.ready(received, free_since, 1.0 / self.core.camera_rate.rate_hz):
                continue  # came before the slot opened, or waited too long for the previous decision: skip it
            now = self.core.now()
            self._pacer.started(now)
            self._start_age_ms.append((now - received) * 1e3)
            decision = self.core.step(now)
            try:
                self._emit(decision)
            except Exception as err:  # shutting down (context invalid): leave quietly; else report, go on
                if self._stop.is_set() or not self.context.ok():
                    return
                self.get_logger().error(f"publishing failed: {type(err).__name__}: {err}")
            free_since = self.core.now()

    def _on_watchdog(self) -> None:
        with self._publish_lock:
            d = self.core.watchdog()
            if d is None:
                self._watchdog_last = None
                return
            now = self.core.now()
            # the first stop at once, then at the decision rate while the image stays stale
            if self._watchdog_last is not None and now - self._watchdog_last < self._pacer.period:
                return
            self._watchdog_last = now
            self.watchdog_stops += 1
            try:
                self._publish(d)
            except Exception as err:  # as in the worker: never let a failed publish end the node
                if self.context.ok():
                    self.get_logger().error(f"publishing the watchdog's stop failed: {type(err).__name__}: {err}")

    def _emit(self, d: Decision) -> None:
        with self._publish_lock:
            d = self.core.finish(d)
            if d.fault.startswith("stale image at publish"):
                self.stale_at_publish += 1
            self._publish(d)
        # the annotated image is the expensive one (rendering); its stamp ties it to its command
        if self.params["publish_annotated_image"] and self._annotated_pub.get_subscription_count() > 0:
            img = annotate(d.image, d.action, d.q_values, d.state, d.instruction, d.fault)
            self._annotated_pub.publish(image_msg(img, names.CAMERA_OPTICAL_FRAME, ns_to_stamp(d.image_stamp_ns)))

    def _publish(self, d: Decision) -> None:
        """Command, status, diagnostics and markers of one decision (the caller holds _publish_lock)."""
        start = time.perf_counter()
        now = self.get_clock().now()
        now_ns = now.nanoseconds
        stamp = ns_to_stamp(d.image_stamp_ns)  # zero when the command does not come from an image
        self._cmd_pub.publish(command_to_msg(d.action, bins=d.bins, q_values=d.q_values, stamp=stamp))
        latency_ms = (now_ns - d.image_stamp_ns) / 1e6 if d.image_stamp_ns and d.bins is not None else float("nan")
        if d.bins is not None:
            self._inference_ms.append(d.inference_ms)
            self._latency_ms.append(latency_ms)
        if d.state == STATE_FAULT:
            self.faults += 1
        status = self._status_type()
        status.header.stamp = now.to_msg()
        status.state = d.state
        status.instruction = self.core.instruction
        status.fault = d.fault
        status.image_age_s = float(d.image_age_s)
        status.inference_ms = float(d.inference_ms)
        status.rate_hz = float(self.core.rate.rate_hz)
        status.decisions = self.core.decisions
        self._status_pub.publish(status)
        self._diagnose(d, now_ns / 1e9, latency_ms, now.to_msg())
        if self.params["publish_markers"] and self._marker_pub.get_subscription_count() > 0:
            specs = command_markers(d.action, d.state, d.instruction, d.fault)
            self._marker_pub.publish(marker_array(specs, names.BASE_FRAME, stamp))
        self._publish_ms.append((time.perf_counter() - start) * 1e3)

    def _diagnose(self, d: Decision, now_s: float, latency_ms: float, stamp) -> None:  # noqa: ANN001
        changed = d.state != self._last_state
        self._last_state = d.state
        if d.state != STATE_FAULT and not changed and now_s - self._last_diag < self.params["diagnostics_period_s"]:
            return
        self._last_diag = now_s
        level = DIAG_ERROR if d.state == STATE_FAULT else DIAG_OK
        message = d.fault if d.state == STATE_FAULT else STATE_NAMES[d.state]
        if d.state == STATE_DISABLED:
            message = f"disabled: stop commands until enabled ({names.POLICY_ENABLE})"
        values = {
            "state": STATE_NAMES[d.state],
            "instruction": self.core.instruction,
            "reasoning": d.reasoning,  # a reasoning model's scene in words ("A2C5.C5."), else empty
            "image_age_s": d.image_age_s,
            "inference_ms": d.inference_ms,
            "inference_ms_p50": percentile(self._inference_ms, 50),
            "inference_ms_p99": percentile(self._inference_ms, 99),
            "camera_to_command_ms": latency_ms,
            "camera_to_command_ms_p50": percentile(self._latency_ms, 50),
            "camera_to_command_ms_p99": percentile(self._latency_ms, 99),
            "image_age_at_start_ms_p50": percentile(self._start_age_ms, 50),
            "convert_ms": d.convert_ms,
            "publish_ms_p50": percentile(self._publish_ms, 50),
            "rate_hz": self.core.rate.rate_hz,
            "image_rate_hz": self.core.camera_rate.rate_hz,
            "decisions": self.core.decisions,
            "decoder": self.params["decoder"],
            "decode_passes": (
                int(self._drafts.last_passes[0])
                if self._drafts is not None and self._drafts.last_passes is not None
                else self._greedy_passes
            ),
            "faults": self.faults,
            "watchdog_stops": self.watchdog_stops,
            "stale_at_publish": self.stale_at_publish,
        }
        self._diag_pub.publish(diagnostic_array(f"more_vla_policy: {NODE_NAME}", level, message, values, stamp, "vla"))

    def destroy_node(self) -> None:
        self._stop.set()
        self._new_frame.set()
        if self._worker.is_alive():
            self._worker.join(timeout=10.0)
        with contextlib.suppress(Exception):
            super().destroy_node()


def main(args: list[str] | None = None) -> int:
    # One executor thread is enough: every callback is short (inference has its own thread) and rclpy's
    # multi-threaded executor costs more Python per callback, which the inference thread pays for in GIL time.
    return run_node(PolicyNode, NODE_NAME, __doc__.splitlines()[0], args)


if __name__ == "__main__":
    raise SystemExit(main())
