"""Every Python example in README.md and docs/*.md runs, and shows what it prints.

The rules (also in docs/development.md, "Examples in the documentation"):

- Each ```python fenced block is one test, with the id ``FILE:LINE`` (the line
  of its opening fence). ```bash, ```text and other blocks are not run.
- Each block runs on its own, in a fresh namespace, as a reader who pastes it
  into a file would run it: every example carries its own imports and
  definitions. Nothing is shared between blocks, even on one page.
- A block fails if it raises. Functions it defines whose name starts with
  ``test_`` are then called, in order, as pytest would: a ``monkeypatch``
  parameter receives a ``pytest.MonkeyPatch`` (undone afterwards) and an
  ``async def`` test runs under ``asyncio.run``; no other fixture exists.
- Output: a block followed (blank lines apart) by a line reading exactly
  ``Output:`` and then a ```text block must print exactly that text (trailing
  spaces and trailing blank lines ignored); ``...`` in the expected text
  stands for any characters within one line. A block that prints without
  showing an ``Output:`` block fails, so every printed value is checked.
- A listener failure logged on the ``fluxgate`` logger fails the block unless
  the logged message is part of the block's shown output (an example about
  listener errors logs them to stdout).
- A block is skipped only when the line before its opening fence is
  ``<!-- not-run: REASON -->``, which the rendered page does not show.

What the harness provides: the root logger starts without handlers, so
``logging.basicConfig(stream=sys.stdout, ...)`` inside an example takes effect
(and is undone afterwards); the ``random`` module's state is restored after
each block; ``prometheus_client.REGISTRY`` is a fresh registry for each block;
``SLACK_BOT_TOKEN`` is set, and ``httpx.Client`` / ``httpx.AsyncClient`` send
every request for ``https://slack.com/api/...`` to a local Slack-compatible
server (tests/listeners/slack_server.py) and refuse any other host, so no
example touches the network.
"""

from __future__ import annotations

import asyncio
import contextlib
import inspect
import io
import logging
import random
import re
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

ROOT = Path(__file__).resolve().parent.parent
OUTPUT_LABEL = "Output:"
NOT_RUN = re.compile(r"<!--\s*not-run:\s*(?P<reason>\S.*?)\s*-->")
FENCE = re.compile(r"^(?P<indent>\s*)(?P<fence>`{3,}|~{3,})\s*(?P<lang>[\w+-]*)")
SLACK_TOKEN = "xoxb-docs-example-token"

pytestmark = pytest.mark.no_leakcheck(
    "examples define classes, loggers and event loops afresh on every run; "
    "the library's own leaks are checked by the unit tests"
)


@dataclass(frozen=True)
class Fenced:
    """One fenced block of a markdown file."""

    lang: str
    line: int  # 1-based line of the opening fence
    body: str
    first_body_line: int
    marker: str  # the line before the opening fence, stripped
    end_line: int  # 1-based line of the closing fence


@dataclass(frozen=True)
class Example:
    """A ```python block and what it must print."""

    path: Path
    line: int
    first_body_line: int
    source: str
    expected: str | None
    not_run: str | None

    @property
    def id(self) -> str:
        return f"{self.path.relative_to(ROOT).as_posix()}:{self.line}"


def fenced_blocks(text: str) -> list[Fenced]:
    lines = text.splitlines()
    blocks: list[Fenced] = []
    i = 0
    while i < len(lines):
        opening = FENCE.match(lines[i])
        if opening is None:
            i += 1
            continue
        indent, fence = opening["indent"], opening["fence"]
        close = re.compile(rf"^\s*{re.escape(fence[0])}{{{len(fence)},}}\s*$")
        body: list[str] = []
        j = i + 1
        while j < len(lines) and close.match(lines[j]) is None:
            line = lines[j]
            body.append(line[len(indent):] if line.startswith(indent) else line.lstrip())
            j += 1
        marker = lines[i - 1].strip() if i > 0 else ""
        blocks.append(
            Fenced(opening["lang"].lower(), i + 1, "\n".join(body) + "\n", i + 2, marker, j + 1)
        )
        i = j + 1
    return blocks


def _output_after(lines: list[str], block: Fenced, following: Fenced | None) -> str | None:
    """The ```text block labelled ``Output:`` right after ``block``, if any."""
    if following is None or following.lang != "text":
        return None
    between = [line.strip() for line in lines[block.end_line : following.line - 1]]
    if [line for line in between if line] != [OUTPUT_LABEL]:
        return None
    return following.body


def collect(path: Path) -> list[Example]:
    text = path.read_text(encoding="utf-8")
    lines = text.splitlines()
    blocks = fenced_blocks(text)
    examples = []
    for index, block in enumerate(blocks):
        if block.lang not in ("python", "py", "python3"):
            continue
        following = blocks[index + 1] if index + 1 < len(blocks) else None
        not_run = NOT_RUN.fullmatch(block.marker)
        examples.append(
            Example(
                path=path,
                line=block.line,
                first_body_line=block.first_body_line,
                source=block.body,
                expected=_output_after(lines, block, following),
                not_run=not_run["reason"] if not_run else None,
            )
        )
    return examples


def documentation_files() -> list[Path]:
    files = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
    return [path for path in files if path.is_file()]


EXAMPLES = [example for path in documentation_files() for example in collect(path)]


# ---- output comparison ----------------------------------------------------


def _normalise(text: str) -> list[str]:
    lines = [line.rstrip() for line in text.splitlines()]
    while lines and not lines[-1]:
        lines.pop()
    return lines


def _line_matches(expected: str, actual: str) -> bool:
    if "..." not in expected:
        return expected == actual
    pattern = ".*".join(re.escape(part) for part in expected.split("..."))
    return re.fullmatch(pattern, actual, flags=re.DOTALL) is not None


def output_matches(expected: str, actual: str) -> bool:
    want, got = _normalise(expected), _normalise(actual)
    return len(want) == len(got) and all(map(_line_matches, want, got))


# ---- the environment each example runs in ---------------------------------


class _ListenerErrors(logging.Handler):
    """Collects the ERROR records of the ``fluxgate`` logger."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.messages: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.messages.append(record.getMessage())


@contextlib.contextmanager
def _isolated_logging() -> Iterator[None]:
    """The root logger without handlers (pytest's included) for one block;
    afterwards every logger gets back its handlers, level and propagation."""
    manager = logging.Logger.manager
    loggers = [logging.getLogger()] + [
        logger for logger in manager.loggerDict.values() if isinstance(logger, logging.Logger)
    ]
    saved = {
        id(logger): (logger.handlers[:], logger.level, logger.propagate, logger.disabled)
        for logger in loggers
    }
    logging.getLogger().handlers.clear()
    try:
        yield
    finally:
        for logger in [logging.getLogger(), *manager.loggerDict.values()]:
            if not isinstance(logger, logging.Logger):
                continue
            handlers, level, propagate, disabled = saved.get(
                id(logger), ([], logging.NOTSET, True, False)
            )
            for handler in logger.handlers:
                if handler not in handlers:
                    handler.close()
            logger.handlers[:] = handlers
            logger.setLevel(level)
            logger.propagate, logger.disabled = propagate, disabled


@contextlib.contextmanager
def _listener_errors() -> Iterator[_ListenerErrors]:
    logger = logging.getLogger("fluxgate")
    handler = _ListenerErrors()
    logger.addHandler(handler)
    try:
        yield handler
    finally:
        logger.removeHandler(handler)


@contextlib.contextmanager
def _restored_random_state() -> Iterator[None]:
    state = random.getstate()
    try:
        yield
    finally:
        random.setstate(state)


@contextlib.contextmanager
def _local_slack(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    """Route httpx requests for slack.com to a local Slack-compatible server.

    Yields the list of refused URLs (requests for any other host)."""
    pytest.importorskip("httpx")
    import httpx
    from listeners.slack_server import running_fake_slack

    refused: list[str] = []
    for name in ("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "NO_PROXY"):
        monkeypatch.delenv(name, raising=False)
        monkeypatch.delenv(name.lower(), raising=False)
    monkeypatch.setenv("SLACK_BOT_TOKEN", SLACK_TOKEN)

    with running_fake_slack() as fake:
        local = httpx.URL(fake.url)

        def redirected(request: httpx.Request) -> httpx.Request:
            if request.url.host != "slack.com":
                refused.append(str(request.url))
                raise httpx.ConnectError("examples may only reach Slack", request=request)
            request.url = local
            request.headers["Host"] = f"{local.host}:{local.port}"
            return request

        class Redirect(httpx.BaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.HTTPTransport()

            def handle_request(self, request: httpx.Request) -> httpx.Response:
                return self.inner.handle_request(redirected(request))

            def close(self) -> None:
                self.inner.close()

        class AsyncRedirect(httpx.AsyncBaseTransport):
            def __init__(self) -> None:
                self.inner = httpx.AsyncHTTPTransport()

            async def handle_async_request(self, request: httpx.Request) -> httpx.Response:
                return await self.inner.handle_async_request(redirected(request))

            async def aclose(self) -> None:
                await self.inner.aclose()

        real_client, real_async_client = httpx.Client, httpx.AsyncClient

        def client(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("transport", Redirect())
            return real_client(*args, **kwargs)

        def async_client(*args: Any, **kwargs: Any) -> Any:
            kwargs.setdefault("transport", AsyncRedirect())
            return real_async_client(*args, **kwargs)

        monkeypatch.setattr(httpx, "Client", client)
        monkeypatch.setattr(httpx, "AsyncClient", async_client)
        try:
            yield refused
        finally:
            for post in fake.posts:
                assert post.headers.get("authorization") == f"Bearer {SLACK_TOKEN}"


def _fresh_prometheus_registry(monkeypatch: pytest.MonkeyPatch) -> None:
    try:
        import prometheus_client
    except ImportError:
        return
    monkeypatch.setattr(prometheus_client, "REGISTRY", prometheus_client.CollectorRegistry())


def _call_test_function(function: Callable[..., Any]) -> None:
    parameters = inspect.signature(function).parameters
    unknown = [name for name in parameters if name != "monkeypatch"]
    if unknown:
        raise AssertionError(
            f"{function.__name__} asks for fixtures {unknown}; examples may use only monkeypatch"
        )
    with pytest.MonkeyPatch.context() as patch:
        arguments = {"monkeypatch": patch} if parameters else {}
        result = function(**arguments)
        if inspect.iscoroutine(result):
            asyncio.run(result)


def run_example(example: Example, monkeypatch: pytest.MonkeyPatch) -> str:
    """Run one example as described at the top of this module; return its output."""
    # Padding keeps the markdown file's line numbers in tracebacks.
    code = compile(
        "\n" * (example.first_body_line - 1) + example.source, str(example.path), "exec"
    )
    namespace: dict[str, Any] = {"__name__": "__main__"}
    _fresh_prometheus_registry(monkeypatch)
    stdout = io.StringIO()
    with contextlib.ExitStack() as stack:
        if "Slack" in example.source:
            refused = stack.enter_context(_local_slack(monkeypatch))
        else:
            refused = []
        stack.enter_context(_restored_random_state())
        stack.enter_context(_isolated_logging())
        errors = stack.enter_context(_listener_errors())
        stack.enter_context(contextlib.redirect_stdout(stdout))
        exec(code, namespace)
        for name, value in list(namespace.items()):
            if name.startswith("test_") and inspect.isfunction(value):
                _call_test_function(value)
    assert not refused, f"the example tried to reach {refused}"
    shown = example.expected or ""
    unshown = [message for message in errors.messages if message not in shown]
    assert not unshown, f"a listener failure was logged but not shown: {unshown}"
    return stdout.getvalue()


@pytest.mark.parametrize("example", EXAMPLES, ids=[example.id for example in EXAMPLES])
def test_example(example: Example, monkeypatch: pytest.MonkeyPatch) -> None:
    if example.not_run is not None:
        pytest.skip(f"not run: {example.not_run}")
    printed = run_example(example, monkeypatch)
    if example.expected is None:
        assert printed == "", (
            f"the example printed but shows no {OUTPUT_LABEL!r} block:\n{printed}"
        )
    else:
        assert output_matches(example.expected, printed), (
            f"printed:\n{printed}\nexpected:\n{example.expected}"
        )


# ---- the harness itself ---------------------------------------------------


def test_every_page_is_searched() -> None:
    names = {path.relative_to(ROOT).as_posix() for path in documentation_files()}
    assert "README.md" in names
    assert {"docs/index.md", "docs/components.md", "docs/api.md"} <= names


def test_collect_finds_blocks_outputs_and_markers(tmp_path: Path) -> None:
    page = tmp_path / "page.md"
    page.write_text(
        "# Title\n"
        "\n"
        "```python\n"
        "print('a')\n"
        "```\n"
        "\n"
        "Output:\n"
        "\n"
        "```text\n"
        "a\n"
        "```\n"
        "\n"
        "```bash\n"
        "echo no\n"
        "```\n"
        "\n"
        "<!-- not-run: needs a real server -->\n"
        "```python\n"
        "raise SystemExit\n"
        "```\n"
        "\n"
        "Some text.\n"
        "```text\n"
        "not an output\n"
        "```\n"
        "- a list item:\n"
        "\n"
        "  ```python\n"
        "  x = 1\n"
        "  ```\n"
    )
    first, second, third = collect(page)
    assert (first.line, first.source, first.expected, first.not_run) == (3, "print('a')\n", "a\n", None)
    assert (second.line, second.not_run, second.expected) == (18, "needs a real server", None)
    assert (third.line, third.source, third.expected) == (28, "x = 1\n", None)


@pytest.mark.parametrize(
    ("expected", "actual", "matches"),
    [
        ("a\nb\n", "a\nb", True),
        ("a  \n\n", "a", True),
        ("a\n", "a\nb\n", False),
        ("x=..., y=2", "x=0.25, y=2", True),
        ("x=..., y=2", "x=0.25, y=3", False),
        ("[...]", "[x]", True),
        ("...", "two\nlines", False),
        ("a...", "b", False),
    ],
)
def test_output_comparison(expected: str, actual: str, matches: bool) -> None:
    assert output_matches(expected, actual) is matches


def _example(source: str, expected: str | None = None) -> Example:
    return Example(ROOT / "README.md", 1, 2, source, expected, None)


def test_a_raising_example_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    with pytest.raises(ZeroDivisionError):
        run_example(_example("1 / 0\n"), monkeypatch)


def test_test_functions_are_called(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (
        "import os\n"
        "def test_sync(monkeypatch):\n"
        "    monkeypatch.setenv('FLUXGATE_DOCS_PROBE', '1')\n"
        "    print('sync', os.environ['FLUXGATE_DOCS_PROBE'])\n"
        "async def test_async():\n"
        "    print('async')\n"
    )
    assert run_example(_example(source), monkeypatch) == "sync 1\nasync\n"
    with pytest.raises(AssertionError, match="boom"):
        run_example(_example("def test_x():\n    assert False, 'boom'\n"), monkeypatch)


def test_an_unshown_listener_failure_fails(monkeypatch: pytest.MonkeyPatch) -> None:
    source = (
        "from fluxgate import CircuitBreaker\n"
        "def broken(signal):\n"
        "    raise RuntimeError('no')\n"
        "CircuitBreaker(listeners=[broken]).reset()\n"
    )
    with pytest.raises(AssertionError, match="Listener function failed"):
        run_example(_example(source), monkeypatch)
    assert run_example(_example(source, "Listener function failed\n"), monkeypatch) == ""


def test_logging_and_random_are_restored(monkeypatch: pytest.MonkeyPatch) -> None:
    root, fluxgate = logging.getLogger(), logging.getLogger("fluxgate")
    before = [(logger.handlers[:], logger.level) for logger in (root, fluxgate)]
    state = random.getstate()
    source = (
        "import logging, random, sys\n"
        "logging.basicConfig(stream=sys.stdout, level=logging.INFO, format='%(message)s')\n"
        "logging.getLogger('x').info('logged')\n"
        "logging.getLogger('fluxgate').addHandler(logging.NullHandler())\n"
        "logging.getLogger('fluxgate').setLevel(logging.DEBUG)\n"
        "random.seed(7)\n"
    )
    assert run_example(_example(source), monkeypatch) == "logged\n"
    assert [(logger.handlers, logger.level) for logger in (root, fluxgate)] == before
    assert random.getstate() == state


def test_slack_requests_reach_only_the_local_server(monkeypatch: pytest.MonkeyPatch) -> None:
    pytest.importorskip("httpx")
    source = (
        "import httpx, os\n"
        "with httpx.Client() as client:\n"
        "    r = client.post('https://slack.com/api/chat.postMessage', json={'channel': 'C'},\n"
        "                    headers={'Authorization': 'Bearer ' + os.environ['SLACK_BOT_TOKEN']})\n"
        "    print(r.json()['ok'])\n"
        "    # Slack is named above, so the redirect is in place\n"
        "    try:\n"
        "        client.get('http://192.0.2.1/')\n"
        "    except httpx.ConnectError as exc:\n"
        "        print(exc)\n"
    )
    with pytest.raises(AssertionError, match="tried to reach"):
        run_example(_example(source), monkeypatch)


# ---- the API reference against the package ----------------------------------


def _split_parameters(text: str) -> list[str]:
    parts, depth, current = [], 0, ""
    for char in text:
        if char in "([{":
            depth += 1
        elif char in ")]}":
            depth -= 1
        if char == "," and depth == 0:
            parts.append(current.strip())
            current = ""
        else:
            current += char
    if current.strip():
        parts.append(current.strip())
    return parts


def _documented(parameters: str) -> list[tuple[str, object]]:
    """``name: type = default`` items as (name, default or a marker)."""
    import ast

    result: list[tuple[str, object]] = []
    for item in _split_parameters(parameters):
        name_and_type, _, default = item.partition("=")
        name = name_and_type.split(":")[0].strip()
        value = ast.literal_eval(default.strip()) if default else inspect.Parameter.empty
        result.append((name, value))
    return result


def _actual(obj: Any) -> list[tuple[str, object]]:
    result: list[tuple[str, object]] = []
    previous = None
    for parameter in inspect.signature(obj).parameters.values():
        kind = parameter.kind
        if previous is inspect.Parameter.POSITIONAL_ONLY and kind is not previous:
            result.append(("/", inspect.Parameter.empty))
        if kind is inspect.Parameter.KEYWORD_ONLY and previous not in (
            inspect.Parameter.KEYWORD_ONLY,
            inspect.Parameter.VAR_POSITIONAL,
        ):
            result.append(("*", inspect.Parameter.empty))
        prefix = {"VAR_POSITIONAL": "*", "VAR_KEYWORD": "**"}.get(kind.name, "")
        result.append((prefix + parameter.name, parameter.default))
        previous = kind
    if previous is inspect.Parameter.POSITIONAL_ONLY:
        result.append(("/", inspect.Parameter.empty))
    return result


def _public_classes() -> dict[str, list[Any]]:
    import importlib

    modules = [
        "fluxgate.circuitbreaker", "fluxgate.metric", "fluxgate.windows",
        "fluxgate.trackers", "fluxgate.trippers", "fluxgate.retries",
        "fluxgate.permits", "fluxgate.signal", "fluxgate.listeners.log",
        "fluxgate.listeners.prometheus", "fluxgate.listeners.slack",
    ]  # fmt: skip
    classes: dict[str, list[Any]] = {}
    for name in modules:
        module = importlib.import_module(name)
        for public in module.__all__ + ["CircuitBreakerInfo"] * (name == modules[0]):
            obj = getattr(module, public)
            if inspect.isclass(obj) and public != "Template":  # a TypedDict
                classes.setdefault(public, []).append(obj)
    return classes


def test_api_reference_signatures_match_the_package() -> None:
    pytest.importorskip("prometheus_client")
    pytest.importorskip("httpx")
    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    blocks = fenced_blocks(api)
    lines = api.splitlines()
    outputs = {
        _output_after(lines, block, following)
        for block, following in zip(blocks, blocks[1:])
        if block.lang == "python"
    }
    signature_blocks = [
        block.body for block in blocks if block.lang == "text" and block.body not in outputs
    ]
    bold = re.findall(r"\*\*`([A-Z]\w*\([^`]*\))`\*\*", api)
    documented = re.findall(
        r"\b([A-Z]\w*)\(((?:[^()]|\([^()]*\))*)\)", "\n".join(signature_blocks + bold)
    )
    classes = _public_classes()
    checked = set()
    for name, parameters in documented:
        if name not in classes:
            continue
        want = _documented(" ".join(parameters.split()))
        candidates = [_actual(cls) for cls in classes[name]]
        assert want in candidates, f"{name}({parameters}) in docs/api.md; the package has {candidates}"
        checked.add(name)
    # Every public class with parameters is documented with its signature.
    missing = {
        name
        for name, objs in classes.items()
        if any(_actual(obj) for obj in objs) and name not in checked
    }
    assert not missing, f"docs/api.md shows no signature for {sorted(missing)}"


@pytest.mark.parametrize(
    ("method", "documented"),
    [
        ("call", "func, /, *args, **kwargs"),
        ("call_with_fallback", "func, fallback, /, *args, **kwargs"),
        ("__call__", "func=None, *, fallback=None"),
    ],
)
def test_api_reference_breaker_methods(method: str, documented: str) -> None:
    from fluxgate import AsyncCircuitBreaker, CircuitBreaker

    api = (ROOT / "docs" / "api.md").read_text(encoding="utf-8")
    assert f"`{method}({documented})`" in api
    for breaker in (CircuitBreaker, AsyncCircuitBreaker):
        actual = [item for item in _actual(getattr(breaker, method)) if item[0] != "self"]
        if actual and actual[0] == ("/", inspect.Parameter.empty):
            actual = actual[1:]  # a native method's ``self, /``
        assert actual == _documented(documented), breaker
