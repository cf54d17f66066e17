"""A local HTTP server that stands in for the Hugging Face Hub in push tests.

It answers the calls an upload makes without xet storage (`create_repo`, `create_branch`, the model card's YAML
check, the `preupload` check and the NDJSON `commit`), keeps every committed file, and can be told to answer with
an HTTP error instead.
"""

from __future__ import annotations

import base64
import json
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote


class FakeHub:
    """Records commits: ``files[repo_id][path] = bytes`` and ``commits`` as (repo_id, branch); ``status`` other than
    200 makes every call fail. As on the Hub, a commit to a branch that was never created is refused (404)."""

    def __init__(self):
        self.files: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, set[str]] = {}
        self.commits: list[tuple[str, str]] = []
        self.requests: list[tuple[str, str]] = []
        self.status = 200
        hub = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                hub.requests.append(("POST", self.path))
                if hub.status != 200:
                    return self._reply(hub.status, {"error": f"fake hub answers {hub.status}"})
                path = self.path.split("?")[0]
                if path == "/api/repos/create":
                    name = json.loads(body)
                    repo = f"{name.get('organization') or 'me'}/{name['name']}"
                    return self._reply(200, {"url": f"{hub.endpoint}/{repo}", "name": repo, "id": repo})
                if path == "/api/validate-yaml":
                    return self._reply(200, {})
                if "/preupload/" in path:
                    files = [{"path": f["path"], "uploadMode": "regular", "shouldIgnore": False}
                             for f in json.loads(body)["files"]]
                    return self._reply(200, {"files": files})
                if "/branch/" in path:
                    repo, branch = unquote(path.split("/api/models/")[1]).split("/branch/")
                    hub.branches.setdefault(repo, {"main"}).add(branch)
                    return self._reply(200, {})
                if "/commit/" in path:
                    repo, branch = unquote(path.split("/api/models/")[1]).split("/commit/")
                    if branch not in hub.branches.get(repo, {"main"}):
                        return self._reply(404, {"error": f"Invalid rev id: {branch}"})
                    hub.commits.append((repo, branch))
                    stored = hub.files.setdefault(repo, {})
                    for line in body.splitlines():
                        item = json.loads(line)
                        if item["key"] == "file":
                            stored[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                    return self._reply(200, {"commitUrl": f"{hub.endpoint}/{repo}/commit/{'0' * 40}",
                                             "commitOid": "0" * 40})
                return self._reply(404, {"error": f"unknown path {path}"})

            def _reply(self, status: int, payload: dict):
                data = json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.endpoint = f"http://127.0.0.1:{self.server.server_address[1]}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)

    def __enter__(self) -> "FakeHub":
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.server.shutdown()
        self.server.server_close()
