"""Run vLLM's own `qwen3_coder` tool parser on the case table (tests/toolcall_cases.py) and compare with visagent's.

Not part of the test suite: the vLLM wheel is ~336 MB and needs torch 2.14, so it cannot be installed beside
this project's torch. Its parser is pure Python, though, and imports without torch once the wheel's Python
files and its light dependencies are on the path::

    mkdir -p /tmp/vlx && unzip -q vllm-0.33.0-*.whl -x '*.so' 'vllm/third_party/*' -d /tmp/vlx
    .venv/bin/python -m pip install -q --no-deps --target /tmp/vldeps \\
        aiohappyeyeballs aiohttp aiosignal apache-tvm-ffi attrs cachetools cbor2 cloudpickle frozenlist ijson \\
        jsonschema jsonschema-specifications mistral-common msgspec multidict openai-harmony partial-json-parser \\
        prometheus-client propcache py-cpuinfo pybase64 pycountry pydantic-extra-types pyzmq referencing \\
        requests rpds-py urllib3 uvloop xgrammar yarl
    PYTHONPATH=/tmp/vlx:/tmp/vldeps .venv/bin/python scripts/compare_vllm_parser.py

Prints one line per case that differs, then one JSON line with the counts.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from engine import tiny_checkpoint_path  # noqa: E402
from engine.api import ParsedToolCall, parse_tool_calls  # noqa: E402
from engine.chat_protocol import wire_tool_calls  # noqa: E402
from tests.toolcall_cases import GUI_CASES, GUI_REFUSED, PUBLIC_CASES  # noqa: E402
from visagent.core.errors import ParseError  # noqa: E402
from visagent.loop.parsing import parse_output  # noqa: E402
from visagent.core.schemas import computer_use_tool, mobile_use_tool  # noqa: E402


def main() -> None:
    import vllm
    from transformers import AutoTokenizer
    from vllm.entrypoints.openai.chat_completion.protocol import ChatCompletionRequest
    from vllm.tool_parsers import ToolParserManager

    tokenizer = AutoTokenizer.from_pretrained(str(tiny_checkpoint_path()))  # Qwen3.5's tokenizer
    parser_cls = ToolParserManager.get_tool_parser("qwen3_coder")

    def theirs(text: str, tools: list[dict]) -> list[tuple[str, dict]]:
        request = ChatCompletionRequest(model="m", messages=[{"role": "user", "content": "hi"}], tools=tools)
        result = parser_cls(tokenizer, request.tools).extract_tool_calls(text, request)
        return [(c.function.name, json.loads(c.function.arguments)) for c in result.tool_calls]

    def actions(text: str, platform: str, calls=None):
        try:
            return [a.to_dict() for a in parse_output(text, tool_calls=calls, platform=platform).actions]
        except ParseError:
            return "refused"

    public_same = 0
    for cid, text, tools, _, _ in PUBLIC_CASES:
        got, ours = theirs(text, tools), [(c.name, c.arguments) for c in parse_tool_calls(text, tools)[1]]
        public_same += got == ours
        if got != ours:
            print(f"public {cid}: vllm {got}  visagent {ours}")
    gui_tools = [computer_use_tool("norm1000", 1920, 1080), mobile_use_tool("norm1000", 1080, 2400)]
    gui = [(c[0], c[1], c[2]) for c in GUI_CASES] + [(c[0], c[1], "desktop") for c in GUI_REFUSED]
    gui_same = 0
    for cid, text, platform in gui:
        got = theirs(text, gui_tools)
        behind = actions("", platform, wire_tool_calls([ParsedToolCall(n, a) for n, a in got])) if got else "refused"
        ours = actions(text, platform)
        gui_same += behind == ours
        if behind != ours:
            print(f"gui {cid}: behind vllm {behind}  visagent {ours}")
    print(json.dumps({"vllm": vllm.__version__, "public_same": public_same, "public": len(PUBLIC_CASES),
                      "gui_same": gui_same, "gui": len(gui)}))


if __name__ == "__main__":
    main()
