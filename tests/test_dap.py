"""`retrograde dap`: DAP clients (ours over stdio and TCP, and VS Code's DebugClient under node) against the
adapter, with the stops and values checked against `retrograde replay` at the same places."""

from __future__ import annotations

import json
import os
import queue
import re
import shutil
import socket
import subprocess
import sys
import textwrap
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import Any, BinaryIO

import pytest
from conftest import PROJECT_ROOT, RunRetrograde, retrograde_command

from retrograde.dap.launch import LAUNCH_ATTRIBUTES

WAIT = 60  # seconds a reply may take before the test gives up (a hang, not a timing assertion)

LOOP = textwrap.dedent("""\
    def total(values):
        acc = 0
        for v in values:
            acc += v

        return acc


    print("start")
    print("Content-Length: 3\\r\\n\\r\\n{}")
    result = total([3, 4, 5])
    print("sum", result)
""")
LOOP_BODY = 4  # `acc += v`


class Client:
    """A small DAP client: frames requests, collects events, waits for responses."""

    def __init__(self, reader: BinaryIO, writer: BinaryIO) -> None:
        self.reader, self.writer = reader, writer
        self.seq = 0
        self.messages: queue.Queue[dict[str, Any] | None] = queue.Queue()
        self.events: list[dict[str, Any]] = []
        threading.Thread(target=self._read_all, daemon=True).start()

    def _read_all(self) -> None:
        try:
            while True:
                length = None
                while True:
                    line = self.reader.readline()
                    if not line:
                        self.messages.put(None)
                        return
                    if line == b"\r\n":
                        break
                    name, _, value = line.decode("ascii").partition(":")
                    assert name == "Content-Length", line
                    length = int(value)
                assert length is not None
                self.messages.put(json.loads(self.reader.read(length)))
        except (OSError, ValueError):
            self.messages.put(None)

    def _next(self) -> dict[str, Any]:
        message = self.messages.get(timeout=WAIT)
        assert message is not None, "the adapter closed the stream"
        if message["type"] == "event":
            self.events.append(message)
        return message

    def send(self, command: str, **arguments: Any) -> int:
        self.seq += 1
        body = json.dumps({"seq": self.seq, "type": "request", "command": command,
                           "arguments": arguments}).encode()
        self.writer.write(b"Content-Length: %d\r\n\r\n" % len(body) + body)
        self.writer.flush()
        return self.seq

    def request(self, command: str, **arguments: Any) -> dict[str, Any]:
        """The successful response's body (the test fails on an error response)."""
        response = self.response(command, **arguments)
        assert response["success"], response
        return response.get("body", {})

    def response(self, command: str, **arguments: Any) -> dict[str, Any]:
        seq = self.send(command, **arguments)
        while True:
            message = self._next()
            if message["type"] == "response" and message["request_seq"] == seq:
                assert message["command"] == command
                return message

    def event(self, name: str) -> dict[str, Any]:
        """The next event called `name` not yet taken (others are kept in self.events)."""
        for index, event in enumerate(self.events):
            if event["event"] == name:
                return self.events.pop(index)
        while True:
            message = self._next()
            if message["type"] == "event" and message["event"] == name:
                self.events.remove(message)
                return message

    def stopped(self) -> dict[str, Any]:
        return self.event("stopped")["body"]

    def top(self) -> dict[str, Any]:
        return self.request("stackTrace", threadId=1)["stackFrames"][0]

    def locals(self, frame: int) -> dict[str, str]:
        scopes = self.request("scopes", frameId=frame)["scopes"]
        reference = next(s for s in scopes if s["name"] == "Locals")["variablesReference"]
        variables = self.request("variables", variablesReference=reference)["variables"]
        return {v["name"]: v["value"] for v in variables if not v["name"].startswith("(")}

    def start(self, **launch: Any) -> dict[str, Any]:
        capabilities = self.request("initialize", adapterID="retrograde", linesStartAt1=True)
        self.event("initialized")
        self.request("launch", **launch)
        return capabilities

    def output(self) -> str:
        return "".join(e["body"]["output"] for e in self.events
                       if e["event"] == "output" and e["body"]["category"] in ("stdout", "stderr"))


def adapter_command() -> list[str]:
    """`retrograde dap`, as editors start it (the console script, or the package from the source tree)."""
    command, _env = retrograde_command()
    return [*command, "dap"]


def adapter_env() -> dict[str, str]:
    path = os.pathsep.join(p for p in (str(PROJECT_ROOT), os.environ.get("PYTHONPATH", "")) if p)
    return {**os.environ, "PYTHONPATH": path}


@pytest.fixture
def client() -> Iterator[Client]:
    process = subprocess.Popen(adapter_command(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                               stderr=subprocess.PIPE, env=adapter_env())
    assert process.stdin is not None and process.stdout is not None
    try:
        yield Client(process.stdout, process.stdin)
    finally:
        process.stdin.close()
        assert process.wait(timeout=WAIT) == 0
        assert process.stderr is not None
        assert b"Traceback" not in process.stderr.read()


def write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


@pytest.fixture
def loop_trace(tmp_path: Path, run_retrograde: RunRetrograde) -> tuple[Path, Path]:
    program = write(tmp_path, "loop.py", LOOP)
    trace = tmp_path / "loop.rtrace"
    result = run_retrograde(["record", "-o", trace, program], cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    return program, trace


def replay_blocks(run_retrograde: RunRetrograde, trace: Path, commands: list[str]) -> list[str]:
    """What `retrograde replay` prints for each command (index 0: the start)."""
    result = run_retrograde(["replay", trace], cwd=trace.parent, input="\n".join(commands) + "\n")
    assert result.returncode == 0, result.stderr
    return [block.strip("\n") for block in result.stdout.split("(retro) ")]


def location(block: str) -> tuple[str, int]:
    match = re.search(r"^> (.*)\((\d+)\)", block, re.M)
    assert match is not None, block
    return match.group(1), int(match.group(2))


def done_when_scenario(client: Client, program: Path, trace: Path) -> dict[str, Any]:
    """The issue's scenario; returns what it saw at each stop."""
    capabilities = client.start(trace=str(trace))
    assert capabilities["supportsStepBack"] is True
    placed = client.request("setBreakpoints", source={"path": str(program)},
                            breakpoints=[{"line": LOOP_BODY}])["breakpoints"]
    assert placed[0]["verified"] is True and placed[0]["line"] == LOOP_BODY
    client.request("configurationDone")
    seen: dict[str, Any] = {"ids": placed[0]["id"]}
    first = client.stopped()
    seen["first"] = (first, client.top())
    seen["first_locals"] = client.locals(seen["first"][1]["id"])
    client.request("continue", threadId=1)
    second = client.stopped()
    seen["second"] = (second, client.top())
    seen["second_locals"] = client.locals(seen["second"][1]["id"])
    client.request("stepBack", threadId=1)
    seen["back"] = (client.stopped(), client.top())
    client.request("reverseContinue", threadId=1)
    seen["earlier"] = (client.stopped(), client.top())
    frame = seen["earlier"][1]["id"]
    seen["earlier_locals"] = client.locals(frame)
    seen["acc"] = client.request("evaluate", expression="acc", frameId=frame, context="watch")["result"]
    seen["expression"] = client.request("evaluate", expression="acc + v * 10", frameId=frame,
                                        context="hover")["result"]
    return seen


def check_done_when(seen: dict[str, Any], program: Path, trace: Path, run_retrograde: RunRetrograde) -> None:
    # The replay, driven by the same motions, is the reference for every stop and value.
    blocks = replay_blocks(run_retrograde, trace, [f"b {program}:{LOOP_BODY}", "c", "a", "c", "a", "rn", "rc",
                                                   "a", "p acc", "p acc + v * 10"])
    assert seen["first"][0]["reason"] == "breakpoint"
    assert seen["first"][0]["hitBreakpointIds"] == [seen["ids"]]
    assert (seen["first"][1]["source"]["path"], seen["first"][1]["line"]) == location(blocks[2])
    assert (seen["second"][1]["source"]["path"], seen["second"][1]["line"]) == location(blocks[4])
    assert seen["second"][0]["reason"] == "breakpoint"
    assert seen["back"][0]["reason"] == "step"
    assert (seen["back"][1]["source"]["path"], seen["back"][1]["line"]) == location(blocks[6])
    assert seen["back"][1]["line"] == LOOP_BODY - 1  # one line back: the `for`
    assert seen["earlier"][0]["reason"] == "breakpoint"
    assert (seen["earlier"][1]["source"]["path"], seen["earlier"][1]["line"]) == location(blocks[7])

    def parse_args(block: str) -> dict[str, str]:
        return dict(line.split(" = ", 1) for line in block.splitlines())

    assert seen["first_locals"] == parse_args(blocks[3]) == {"values": "[3, 4, 5]", "acc": "0", "v": "3"}
    assert seen["second_locals"] == parse_args(blocks[5])
    assert seen["second_locals"]["v"] == "4"
    assert seen["earlier_locals"] == parse_args(blocks[8]) == seen["first_locals"]
    assert seen["acc"] == blocks[9] == "0"
    assert seen["expression"] == blocks[10] == "30"


def test_done_when_scenario_over_stdio(client: Client, loop_trace: tuple[Path, Path],
                                       run_retrograde: RunRetrograde) -> None:
    program, trace = loop_trace
    seen = done_when_scenario(client, program, trace)
    check_done_when(seen, program, trace, run_retrograde)
    client.request("disconnect")


def test_done_when_scenario_over_tcp(loop_trace: tuple[Path, Path], run_retrograde: RunRetrograde) -> None:
    program, trace = loop_trace
    process = subprocess.Popen([*adapter_command(), "--listen", "127.0.0.1:0", "--once"],
                               stdin=subprocess.DEVNULL, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                               env=adapter_env())
    try:
        assert process.stderr is not None and process.stdout is not None
        announced = process.stderr.readline().decode()
        match = re.fullmatch(r"retrograde: listening on 127\.0\.0\.1:(\d+)\n", announced)
        assert match, announced
        with socket.create_connection(("127.0.0.1", int(match.group(1)))) as connection, \
                connection.makefile("rb") as reader, connection.makefile("wb") as writer:
            client = Client(reader, writer)
            seen = done_when_scenario(client, program, trace)
            client.request("disconnect")
        assert process.wait(timeout=WAIT) == 0
        assert process.stdout.read() == b""  # nothing but the socket carries the protocol
    finally:
        if process.poll() is None:
            process.kill()
            process.wait()
    check_done_when(seen, program, trace, run_retrograde)


def test_launch_program_records_it_and_its_output_never_reaches_the_stream(
        client: Client, tmp_path: Path) -> None:
    program = write(tmp_path, "loop.py", LOOP + "import sys\nsys.exit(3)\n")
    client.start(program="loop.py", cwd=str(tmp_path), stopOnEntry=True)
    client.request("configurationDone")
    assert client.stopped()["reason"] == "entry"
    assert client.top()["line"] == 1
    assert client.output() == ""  # nothing printed before the first line
    client.request("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": 12}])
    client.request("continue", threadId=1)
    client.stopped()
    # The program's writes before the stop, in order, as output events (the fake header included).
    assert client.output() == "start\nContent-Length: 3\r\n\r\n{}\n"
    client.request("continue", threadId=1)
    assert client.event("exited")["body"]["exitCode"] == 3
    client.event("terminated")
    assert client.output().endswith("sum 12\n")
    client.request("disconnect")


def test_initialize_announces_the_capabilities_then_initialized(client: Client) -> None:
    body = client.request("initialize", adapterID="retrograde")
    for name in ("supportsConfigurationDoneRequest", "supportsStepBack", "supportsConditionalBreakpoints",
                 "supportsHitConditionalBreakpoints", "supportsFunctionBreakpoints",
                 "supportsGotoTargetsRequest", "supportsEvaluateForHovers", "supportsExceptionInfoRequest"):
        assert body[name] is True, name
    assert {f["filter"] for f in body["exceptionBreakpointFilters"]} == {"raised", "uncaught"}
    assert client.event("initialized")["seq"] > 1  # after the response


def test_configuration_sent_before_launch_waits_for_it(client: Client, loop_trace: tuple[Path, Path]) -> None:
    program, trace = loop_trace
    client.request("initialize", adapterID="retrograde")
    early = client.send("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": LOOP_BODY}])
    client.request("launch", trace=str(trace))
    while True:
        message = client._next()
        if message["type"] == "response" and message["request_seq"] == early:
            break
    assert message["body"]["breakpoints"][0]["verified"] is True
    client.request("configurationDone")
    assert client.stopped()["reason"] == "breakpoint"
    assert client.top()["line"] == LOOP_BODY


def test_bad_launches_are_error_responses(client: Client, tmp_path: Path) -> None:
    client.request("initialize", adapterID="retrograde")
    missing = client.response("launch", trace=str(tmp_path / "nope.rtrace"))
    assert not missing["success"] and "no such trace file" in missing["message"]
    junk = write(tmp_path, "junk.rtrace", "not a trace")
    assert not client.response("launch", trace=str(junk))["success"]
    both = client.response("launch", trace=str(junk), program="x.py")
    assert not both["success"] and "exactly one" in both["message"]
    failing = client.response("launch", program=str(write(tmp_path, "bad.py", "def (:\n")))
    assert not failing["success"] and "recording" in failing["message"]
    after = client.response("stackTrace", threadId=1)
    assert not after["success"]


def test_breakpoint_lines_conditions_and_hit_conditions(client: Client,
                                                        loop_trace: tuple[Path, Path]) -> None:
    program, trace = loop_trace
    client.start(trace=str(trace))
    placed = client.request("setBreakpoints", source={"path": str(program)}, breakpoints=[
        {"line": 5}, {"line": 400}, {"line": LOOP_BODY, "condition": "v == 4"}])["breakpoints"]
    assert placed[0] == {"id": placed[0]["id"], "verified": True, "line": 6}  # blank line: the next code
    assert placed[1]["verified"] is False and placed[1]["message"]
    assert placed[2]["verified"] is True
    elsewhere = client.request("setBreakpoints", source={"path": str(trace.parent / "other.py")},
                               breakpoints=[{"line": 1}])["breakpoints"]
    assert elsewhere[0]["verified"] is False
    client.request("configurationDone")
    stop = client.stopped()
    assert stop["hitBreakpointIds"] == [placed[2]["id"]]
    frame = client.top()
    assert client.locals(frame["id"])["v"] == "4"
    client.request("continue", threadId=1)
    assert client.stopped()["hitBreakpointIds"] == [placed[0]["id"]]
    assert client.top()["line"] == 6
    # Replacing the file's breakpoints: the third hit of the loop body only, whichever way we move.
    placed = client.request("setBreakpoints", source={"path": str(program)},
                            breakpoints=[{"line": LOOP_BODY, "hitCondition": "3"}])["breakpoints"]
    client.request("reverseContinue", threadId=1)
    assert client.stopped()["hitBreakpointIds"] == [placed[0]["id"]]
    assert client.locals(client.top()["id"])["v"] == "5"
    client.request("reverseContinue", threadId=1)  # no earlier third hit: back to the start
    client.stopped()
    assert client.top()["line"] == 1
    client.request("continue", threadId=1)
    client.stopped()
    assert client.locals(client.top()["id"])["v"] == "5"
    bad = client.request("setBreakpoints", source={"path": str(program)},
                         breakpoints=[{"line": LOOP_BODY, "hitCondition": "often"}])["breakpoints"]
    assert bad[0]["verified"] is False and "hit condition" in bad[0]["message"]


def test_function_breakpoints_step_in_and_out(client: Client, loop_trace: tuple[Path, Path],
                                              run_retrograde: RunRetrograde) -> None:
    _program, trace = loop_trace
    client.start(trace=str(trace))
    placed = client.request("setFunctionBreakpoints", breakpoints=[{"name": "total"}, {"name": "nothing"}])
    assert [p["verified"] for p in placed["breakpoints"]] == [True, False]
    client.request("configurationDone")
    stop = client.stopped()
    assert stop["reason"] == "breakpoint" and stop["hitBreakpointIds"] == [placed["breakpoints"][0]["id"]]
    frames = client.request("stackTrace", threadId=1)["stackFrames"]
    assert [(f["name"], f["line"]) for f in frames] == [("total", 2), ("<module>", 11)]
    client.request("stepOut", threadId=1)
    client.stopped()
    blocks = replay_blocks(run_retrograde, trace, ["b total", "c", "r", "s"])
    assert client.top()["line"] == location(blocks[3])[1]
    assert client.top()["name"] == "total"  # pdb's return stop: --Return-- in the function
    scopes = client.request("scopes", frameId=client.top()["id"])["scopes"]
    names = client.request("variables", variablesReference=scopes[0]["variablesReference"])["variables"]
    assert names[0] == {"name": "(return value)", "value": "12", "variablesReference": 0, "type": "int"}
    client.request("stepIn", threadId=1)
    client.stopped()
    assert client.top()["name"] == "<module>" and client.top()["line"] == location(blocks[4])[1] == 12


def test_exception_filters_and_info(client: Client, tmp_path: Path, run_retrograde: RunRetrograde) -> None:
    program = write(tmp_path, "crash.py", textwrap.dedent("""\
        def read(config, name):
            return config[name]


        def connect(config):
            try:
                return read(config, "port")
            except KeyError as err:
                raise LookupError(f"no setting {err}") from err


        print("connecting")
        connect({})
    """))
    client.start(program=str(program))
    client.request("setExceptionBreakpoints", filters=["uncaught"])
    client.request("configurationDone")
    stop = client.stopped()
    assert stop["reason"] == "exception"
    assert client.top()["line"] == 9 and client.top()["name"] == "connect"
    info = client.request("exceptionInfo", threadId=1)
    assert info["exceptionId"] == "LookupError" and info["breakMode"] == "unhandled"
    assert info["description"] == "LookupError: no setting 'port'"
    client.request("setExceptionBreakpoints", filters=["raised", "uncaught"])
    client.request("reverseContinue", threadId=1)  # the raise event itself, where `raised` stops
    assert client.stopped()["reason"] == "exception"
    assert client.top()["line"] == 9
    assert client.request("exceptionInfo", threadId=1)["breakMode"] == "always"
    client.request("reverseContinue", threadId=1)
    assert client.stopped()["reason"] == "exception"
    assert client.top()["line"] == 7  # the KeyError arriving in connect (it propagated from read)
    assert client.request("exceptionInfo", threadId=1)["exceptionId"] == "KeyError"
    client.request("setExceptionBreakpoints", filters=[])
    client.request("continue", threadId=1)
    assert client.event("exited")["body"]["exitCode"] == 1
    client.event("terminated")


def test_containers_expand_with_paging(client: Client, tmp_path: Path) -> None:
    program = write(tmp_path, "big.py", textwrap.dedent("""\
        numbers = list(range(150))
        table = {"a": [1, {"b": (2, 3)}], "c": "text"}
        done = True
    """))
    client.start(program=str(program), stopOnEntry=True)
    client.request("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": 3}])
    client.request("configurationDone")
    client.stopped()
    client.request("continue", threadId=1)
    client.stopped()
    scopes = client.request("scopes", frameId=client.top()["id"])["scopes"]
    variables = {v["name"]: v for v in client.request(
        "variables", variablesReference=scopes[0]["variablesReference"])["variables"]}
    numbers = variables["numbers"]
    assert numbers["indexedVariables"] == 150
    page = client.request("variables", variablesReference=numbers["variablesReference"], start=100, count=3)
    assert [(v["name"], v["value"]) for v in page["variables"]] == [("[100]", "100"), ("[101]", "101"),
                                                                    ("[102]", "102")]
    table = client.request("variables", variablesReference=variables["table"]["variablesReference"])
    items = {v["name"]: v for v in table["variables"]}
    assert items["'c'"]["value"] == "'text'" and items["'c'"]["variablesReference"] == 0
    inner = client.request("variables", variablesReference=items["'a'"]["variablesReference"])["variables"]
    assert [v["value"] for v in inner] == ["1", "{'b': (2, 3)}"]
    result = client.request("evaluate", expression="table['a'][1]", context="watch",
                            frameId=client.top()["id"])
    assert result["result"] == "{'b': (2, 3)}" and result["variablesReference"] > 0
    error = client.response("evaluate", expression="undefined_name", context="hover",
                            frameId=client.top()["id"])
    assert not error["success"] and "undefined_name" in error["message"]


def test_repl_runs_replay_commands(client: Client, loop_trace: tuple[Path, Path],
                                   run_retrograde: RunRetrograde) -> None:
    program, trace = loop_trace
    client.start(trace=str(trace))
    client.request("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": LOOP_BODY}])
    client.request("configurationDone")
    client.stopped()
    frame = client.top()["id"]
    history = client.request("evaluate", expression="history acc", context="repl", frameId=frame)["result"]
    blocks = replay_blocks(run_retrograde, trace, [f"b {program}:{LOOP_BODY}", "c", "history acc", "c", "c",
                                                   "rc"])
    assert history == blocks[3] and "acc: 0 -> 3" in history
    value = client.request("evaluate", expression="v", context="repl", frameId=frame)
    assert value["result"] == "3"
    client.request("evaluate", expression="c", context="repl", frameId=frame)  # the replay's continue
    client.stopped()
    client.request("evaluate", expression="c", context="repl")
    client.stopped()
    moved = client.request("evaluate", expression="rc", context="repl")["result"]
    assert moved == blocks[6]
    client.stopped()
    assert client.locals(client.top()["id"])["v"] == "4"


def test_goto_targets_and_goto(client: Client, loop_trace: tuple[Path, Path]) -> None:
    program, trace = loop_trace
    client.start(trace=str(trace), stopOnEntry=True)
    client.request("configurationDone")
    client.stopped()
    targets = client.request("gotoTargets", source={"path": str(program)}, line=LOOP_BODY)["targets"]
    assert len(targets) == 3 and all(t["line"] == LOOP_BODY for t in targets)
    client.request("goto", threadId=1, targetId=targets[2]["id"])
    assert client.stopped()["reason"] == "goto"
    assert client.top()["line"] == LOOP_BODY
    assert client.locals(client.top()["id"])["v"] == "5"
    # From there, the nearest later execution comes first; none is later, so the nearest earlier one.
    again = client.request("gotoTargets", source={"path": str(program)}, line=LOOP_BODY)["targets"]
    assert again[0]["id"] == targets[2]["id"] and again[1]["id"] == targets[1]["id"]
    missing = client.response("gotoTargets", source={"path": str(program)}, line=5)
    assert not missing["success"]


def test_stop_at_end_keeps_the_session_for_stepping_back(client: Client,
                                                         loop_trace: tuple[Path, Path]) -> None:
    _program, trace = loop_trace
    client.start(trace=str(trace), stopAtEnd=True)
    client.request("configurationDone")  # no breakpoints: straight to the end, and stop there
    stop = client.stopped()
    assert stop["description"] == "Paused at the end of the recording"
    assert client.output() == "start\nContent-Length: 3\r\n\r\n{}\nsum 12\n"
    client.request("stepBack", threadId=1)
    client.stopped()
    assert client.top()["line"] == 12
    client.request("continue", threadId=1)
    assert client.stopped()["description"] == "Paused at the end of the recording"
    assert not any(e["event"] == "terminated" for e in client.events)
    client.request("continue", threadId=1)  # nothing further: now the session ends
    assert client.event("exited")["body"]["exitCode"] == 0
    client.event("terminated")
    assert client.output().count("sum 12") == 1  # output is never sent twice


def test_sources_gone_from_disk_come_from_the_trace(client: Client, loop_trace: tuple[Path, Path]) -> None:
    program, trace = loop_trace
    program.unlink()  # the trace was made elsewhere, or the file changed since: the recorded text counts
    client.start(trace=str(trace), stopOnEntry=True)
    client.request("configurationDone")
    client.stopped()
    source = client.top()["source"]
    assert source["path"] == str(program) and source["sourceReference"] > 0
    content = client.request("source", source=source, sourceReference=source["sourceReference"])["content"]
    assert content == LOOP


def test_threads_are_the_recorded_threads(client: Client, tmp_path: Path) -> None:
    program = write(tmp_path, "threads.py", textwrap.dedent("""\
        import threading


        def work(n):
            total = n * 2
            return total


        worker = threading.Thread(target=work, args=(21,))
        worker.start()
        worker.join()
        print("joined")
    """))
    client.start(program=str(program))
    client.request("setBreakpoints", source={"path": str(program)}, breakpoints=[{"line": 12}])
    client.request("configurationDone")
    client.stopped()
    threads = client.request("threads")["threads"]
    assert [t["id"] for t in threads] == [1, 2]
    other = client.request("stackTrace", threadId=2)["stackFrames"]
    assert other[0]["name"].startswith("work")
    value = client.request("evaluate", expression="total", frameId=other[0]["id"], context="watch")
    assert value["result"] == "42"


def test_protocol_errors_are_one_line_on_stderr(tmp_path: Path) -> None:
    result = subprocess.run(adapter_command(), input=b"Content-Length: x\r\n\r\n{}", capture_output=True,
                            env=adapter_env(), timeout=WAIT)
    assert result.returncode == 1
    assert result.stderr.decode().splitlines() == ["retrograde: bad Content-Length 'x'"]
    module = subprocess.run([sys.executable, "-m", "retrograde.dap", "--listen", "x"], capture_output=True,
                            env=adapter_env(), timeout=WAIT)  # the module form takes the same options
    assert module.returncode == 2 and module.stderr.decode().startswith("retrograde: --listen wants")
    bad_listen = subprocess.run([*adapter_command(), "--listen", "here:there"], capture_output=True,
                                env=adapter_env(), timeout=WAIT)
    assert bad_listen.returncode == 2
    assert bad_listen.stderr.decode().startswith("retrograde: --listen wants HOST:PORT")
    assert b"Traceback" not in bad_listen.stderr


def test_neural_launch(client: Client, tmp_path: Path) -> None:
    pytest.importorskip("torch", reason="the neural timeline needs torch (the neural extra)")
    program = write(tmp_path, "f.py", "def double(x):\n    y = x * 2\n    return y\n")
    client.start(neural={"file": str(program), "call": "double(4)"}, stopOnEntry=True)
    client.request("configurationDone")
    assert client.stopped()["reason"] == "entry"
    assert client.top()["name"] == "double"
    assert client.locals(client.top()["id"])["x"] == "4"
    client.request("next", threadId=1)
    client.stopped()
    client.request("stepBack", threadId=1)
    client.stopped()
    assert client.locals(client.top()["id"])["x"] == "4"
    bad = client.response("launch", neural={"file": str(program), "call": "nope(1)"})
    assert not bad["success"]


# -- VS Code's own client ------------------------------------------------------------------------------------
NODE_DIR = PROJECT_ROOT / "tests" / "dap_node"


def node_client() -> str:
    node = shutil.which("node")
    if node is None:
        pytest.skip("node is not installed: the DebugClient test needs node 20")
    if not (NODE_DIR / "node_modules" / "@vscode" / "debugadapter-testsupport").is_dir():
        pytest.skip("@vscode/debugadapter-testsupport is not installed: npm ci --prefix tests/dap_node")
    return node


@pytest.mark.parametrize("transport", ["stdio", "tcp"])
def test_vscode_debug_client_drives_the_scenario(loop_trace: tuple[Path, Path], run_retrograde: RunRetrograde,
                                                 transport: str) -> None:
    node = node_client()
    program, trace = loop_trace
    adapter = PROJECT_ROOT / "retrograde" / "dap" / "__main__.py"  # DebugClient runs `RUNTIME SCRIPT`
    port: list[str] = []
    server = None
    if transport == "tcp":
        server = subprocess.Popen([*adapter_command(), "--listen", "0", "--once"], stdin=subprocess.DEVNULL,
                                  stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=adapter_env())
        assert server.stderr is not None
        port = [server.stderr.readline().decode().rpartition(":")[2].strip()]
    try:
        command = [node, str(NODE_DIR / "scenario.js"), sys.executable, str(adapter), str(trace),
                   str(program), str(LOOP_BODY), *port]
        result = subprocess.run(command, capture_output=True, text=True, timeout=120, env=adapter_env())
        if server is not None:
            assert server.wait(timeout=WAIT) == 0
    finally:
        if server is not None and server.poll() is None:
            server.kill()
            server.wait()
    assert result.returncode == 0, result.stdout + result.stderr
    seen = json.loads(result.stdout.strip().splitlines()[-1])
    blocks = replay_blocks(run_retrograde, trace, [f"b {program}:{LOOP_BODY}", "c", "c", "rn", "rc", "a"])
    assert seen["lines"] == [location(blocks[i])[1] for i in (2, 3, 4, 5)]
    assert seen["locals"] == dict(line.split(" = ", 1) for line in blocks[6].splitlines())
    assert seen["exitCode"] == 0


# -- the VS Code extension -----------------------------------------------------------------------------------
def test_vscode_extension_declares_what_the_adapter_accepts() -> None:
    manifest = json.loads((PROJECT_ROOT / "editors" / "vscode" / "package.json").read_text())
    debuggers = manifest["contributes"]["debuggers"]
    assert [d["type"] for d in debuggers] == ["retrograde"]
    debugger = debuggers[0]
    launch = debugger["configurationAttributes"]["launch"]["properties"]
    assert set(launch) == LAUNCH_ATTRIBUTES
    assert launch["args"]["type"] == "array" and launch["args"]["items"]["type"] == "string"
    assert launch["stopOnEntry"]["type"] == "boolean" and launch["stopAtEnd"]["type"] == "boolean"
    assert set(launch["neural"]["properties"]) >= {"file", "call"}
    # The adapter is `retrograde dap` (the command configurable), started by the extension's factory.
    extension = (PROJECT_ROOT / "editors" / "vscode" / manifest["main"]).read_text()
    assert "registerDebugAdapterDescriptorFactory('retrograde'" in extension
    assert "DebugAdapterExecutable(command, ['dap'])" in extension
    assert manifest["contributes"]["configuration"]["properties"]["retrograde.command"]["default"] == \
        "retrograde"
    for configuration in debugger["initialConfigurations"] + [
            s["body"] for s in debugger["configurationSnippets"]]:
        assert configuration["type"] == "retrograde" and configuration["request"] == "launch"
        assert set(configuration) - {"type", "request", "name"} <= LAUNCH_ATTRIBUTES
    assert "onDebugResolve:retrograde" in manifest["activationEvents"]
