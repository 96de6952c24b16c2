"""The console relay drops TensorFlow's C++ log lines below run.tf_log_level and passes everything
else through as it comes (no TensorFlow: byte streams as the child writes them)."""

from __future__ import annotations

import pytest

from tfrun.runner.processes.tf_log_filter import DEFAULT_LEVEL, ConsoleFilter, configured_level, level_of

NOTICE = b"WARNING: All log messages before absl::InitializeLog() is called are written to STDERR\n"
ONEDNN = (
    b"I0000 00:00:1795976480.504595    4280 port.cc:153] oneDNN custom operations are on. You may see "
    b"slightly different numerical results.\n"
)
CUDA = b"I0000 00:00:1795976480.505143    4280 cudart_stub.cc:31] Could not find cuda drivers on your machine.\n"
CPU_GUARD = (
    b"I0000 00:00:1795976480.902632    4280 cpu_feature_guard.cc:227] This TensorFlow binary is optimized.\n"
    b"To enable the following instructions: AVX2 FMA, in other operations, rebuild TensorFlow.\n"
)
CUINIT = (
    b"E0000 00:00:1795976483.304345    4280 cuda_platform.cc:52] failed call to cuInit: INTERNAL: CUDA error: "
    b"Failed call to cuInit: UNKNOWN ERROR (303)\n"
)
IGNORED = b"W0000 00:00:1795976484.835242    4280 tf_tfl_flatbuffer_helpers.cc:364] Ignored output_format.\n"
LEGACY = (
    b"2026-11-29 18:22:31.123456: I tensorflow/core/platform/cpu_feature_guard.cc:182] This TensorFlow "
    b"binary is optimized\n"
)
FATAL = b"F0000 00:00:1795976484.835242    4280 stream_executor.cc:10] Check failed: device\n"
LITE = b"INFO: Created TensorFlow Lite XNNPACK delegate for CPU.\n"
OURS = (
    b"[tfrun] \xe2\x86\x92 train\nEpoch 1/2\n41/41 - 1s - loss: 2.0061 - accuracy: 0.4996\n"
    b"/x/keras.py:12: UserWarning: `input_shape` is deprecated\n  warnings.warn(\n"
)


def shown(chunks: list[bytes], level: int = DEFAULT_LEVEL) -> bytes:
    console = ConsoleFilter(level)
    return b"".join(console.feed(chunk) for chunk in chunks) + console.flush()


def test_start_up_lines_are_hidden_and_the_rest_passes_unchanged():
    out = shown(
        [
            NOTICE
            + ONEDNN
            + CUDA
            + CPU_GUARD
            + b"[tfrun] \xe2\x86\x92 hardware\n"
            + CUINIT
            + OURS
            + IGNORED
            + LITE
            + LEGACY
        ]
    )
    assert out == b"[tfrun] \xe2\x86\x92 hardware\n" + OURS


@pytest.mark.parametrize(
    "level, visible",
    [
        (0, [NOTICE, ONEDNN, CUINIT, IGNORED, FATAL, LITE]),
        (1, [NOTICE, CUINIT, IGNORED, FATAL]),
        (2, [CUINIT, FATAL]),
        (3, [FATAL]),
    ],
)
def test_the_level_counts_like_tf_cpp_min_log_level(level, visible):
    lines = [NOTICE, ONEDNN, CUINIT, IGNORED, FATAL, LITE]
    assert shown([b"".join(lines)], level) == b"".join(visible)


def test_a_header_split_across_reads_is_held_until_its_newline():
    half = len(CUINIT) // 2
    for cut in (1, 5, 12, 30, half):
        console = ConsoleFilter()
        assert console.feed(CUINIT[:cut]) == b""
        assert console.feed(CUINIT[cut:] + b"next\n") == b"next\n"


def test_other_output_is_not_held_back():
    console = ConsoleFilter()
    assert console.feed(b"\r 3/41 [>......] - ETA: 0s") == b"\r 3/41 [>......] - ETA: 0s"  # a progress bar
    assert console.feed(b"\r 9/41 [==>....]") == b"\r 9/41 [==>....]"
    assert console.feed(b"\n41/41 - 0s") == b"\n41/41 - 0s"
    assert console.feed(b"\nIn 2 s\nE") == b"\nIn 2 s\n"  # an E may still become a C++ error line...
    assert console.feed(b"poch 2/2\n") == b"Epoch 2/2\n"  # ...until it cannot


def test_a_line_that_only_looks_like_a_start_is_shown():
    assert (
        shown([b"I0000 not a log line\n", b"2026-11-29 is a date\n"]) == b"I0000 not a log line\n2026-11-29 is a date\n"
    )


def test_the_continuation_of_a_shown_line_is_shown():
    assert shown([CPU_GUARD], level=0) == CPU_GUARD
    assert shown([b"To enable the following instructions: it is ordinary text here\n"]) == (
        b"To enable the following instructions: it is ordinary text here\n"
    )


def test_a_hidden_line_left_without_a_newline_stays_hidden():
    assert shown([b"ok\n" + CUINIT.rstrip(b"\n")]) == b"ok\n"
    assert shown([b"ok\nE0000 00:0"]) == b"ok\nE0000 00:0"  # not a whole header: shown at the end


def test_line_by_line_relay_of_a_cluster_task():
    console = ConsoleFilter()
    lines = (NOTICE + CPU_GUARD + CUINIT + OURS).split(b"\n")[:-1]
    assert [line for line in lines if console.keep(line)] == OURS.split(b"\n")[:-1]


def test_level_of():
    assert level_of(CUINIT.rstrip()) == 2 and level_of(ONEDNN) == 0 and level_of(LEGACY) == 0
    assert level_of(FATAL) == 3 and level_of(LITE) == 0 and level_of(b"Epoch 1/2") is None
    assert level_of(b"WARNING:tensorflow:Python-side warning") is None  # absl-py's Python logging stays


def test_the_level_comes_from_run_tf_log_level_with_a_default():
    class Run:
        tf_log_level = 0

    assert configured_level(Run()) == 0 and configured_level(object()) == DEFAULT_LEVEL == 3


# The MLIR quantizer's line during int8 conversion (issue 30): plain text, no log header, C++ all the same.
QUANTIZER = b"fully_quantize: 0, inference_type: 6, input_inference_type: INT8, output_inference_type: INT8\n"


def test_the_int8_quantizer_line_goes_to_run_log_only():
    assert level_of(QUANTIZER.rstrip(b"\n")) == 0
    assert shown([OURS, QUANTIZER, LITE, OURS]) == OURS + OURS
    split = [QUANTIZER[:5], QUANTIZER[5:20], QUANTIZER[20:]]  # held while it could still be that line
    assert shown(split) == b""
    assert shown([QUANTIZER], level=0) == QUANTIZER
    assert shown([b"fully_quantized weights: yes\n"]) == b"fully_quantized weights: yes\n"
