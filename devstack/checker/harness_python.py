"""Runs inside the sandbox (``python3 -I -S /task/harness_python.py``), never imported by Kaizen.

Compiles /task/answer.py, then executes it and calls the function that /task/spec.json names on each
input, and writes one result line. Before the answer runs, an audit hook is installed that ends the
process (exit 86) on any attempt to open a file, import a module, start a process, touch a socket or
load native code: the sandbox already gives such an attempt nothing to reach, and the hook makes the
attempt itself a failure, which the answer cannot catch. Only what the harness needs is kept in
local names first, so an answer that rebinds builtins cannot change how results are written.
"""

import json
import os
import sys
from typing import NoReturn

VIOLATION = 86
MARK = "KAIZEN-RESULT "
_REFUSED = ("open", "import", "os.", "socket.", "subprocess.", "ctypes.", "shutil.", "sys._getframe",
            "sys.settrace", "sys.setprofile", "builtins.input", "urllib.", "http.", "marshal.", "pickle.",
            "code.", "cpython.", "winreg.", "msvcrt.", "glob.", "pathlib.", "tempfile.", "webbrowser.")  # fmt: skip


def main() -> None:
    write, stop, dumps, refused = os.write, os._exit, json.dumps, _REFUSED
    with open("/task/spec.json", encoding="utf-8") as file:
        spec = json.load(file)
    with open("/task/answer.py", encoding="utf-8") as file:
        source = file.read()

    def emit(result: dict[str, object]) -> NoReturn:
        write(1, (MARK + dumps(result) + "\n").encode())
        stop(0)

    try:
        code = compile(source, "answer.py", "exec")
    except (SyntaxError, ValueError) as error:
        emit({"compiled": False, "error": f"{type(error).__name__}: {error}"[:300]})

    def guard(event: str, args: tuple[object, ...]) -> None:
        if event.startswith(refused):
            write(2, f"sandbox: {event} refused\n".encode())
            stop(VIOLATION)

    sys.addaudithook(guard)
    namespace: dict[str, object] = {"__name__": "answer"}
    outputs: list[str] = []
    try:
        exec(code, namespace)
    except BaseException as error:  # the answer's own failure, reported as such
        emit({"compiled": True, "defined": False, "error": f"{type(error).__name__}: {error}"[:300]})
    function = namespace.get(spec["name"])
    if not callable(function):
        emit({"compiled": True, "defined": False, "outputs": []})
    for value in spec["inputs"]:
        try:
            outputs.append(repr(function(value))[:1000])
        except BaseException as error:  # a failing test, not a harness error
            outputs.append(f"<{type(error).__name__}>")
    emit({"compiled": True, "defined": True, "outputs": outputs})


main()
