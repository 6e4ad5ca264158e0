"""A Hugging Face Hub API server for tests, on 127.0.0.1: the endpoints huggingface_hub's client calls to
create repos and branches, commit files (regular uploads), read repo info and download files by revision.

Repositories are git-like: every commit is an immutable snapshot with a content id, branches point at
commits, and a file can be read at a branch or at any commit id. ``corrupt`` flips bytes of a served file;
``inflate`` appends that many zero bytes to a served file (``chunked``: without a Content-Length, as a
hostile hub would); ``delay_s`` slows downloads; ``requests`` counts every request (for offline tests),
``downloads`` names every file downloaded and ``sent`` counts the bytes of file bodies actually sent.
"""

from __future__ import annotations

import base64
import hashlib
import itertools
import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from urllib.parse import unquote, urlparse

import yaml


class Repo:
    def __init__(self):
        self.commits: dict[str, dict[str, bytes]] = {}
        self.branches: dict[str, str] = {}

    def files_at(self, revision: str) -> tuple[str, dict[str, bytes]] | None:
        commit = self.branches.get(revision, revision)
        return (commit, self.commits[commit]) if commit in self.commits else None


class HubServer:
    def __init__(self):
        self.repos: dict[str, Repo] = {}
        self.requests = 0
        self.corrupt: set[str] = set()
        self.inflate: dict[str, int] = {}
        self.chunked = False
        self.downloads: list[str] = []
        self.sent = 0
        self.delay_s = 0.0
        self.lock = threading.Lock()
        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), self._handler())
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}"
        # polling every 50 ms (not 0.5 s): shutdown() returns at once, not after half a second per test
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)

    def __enter__(self) -> HubServer:
        self.thread.start()
        return self

    def __exit__(self, *exc) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()

    def _handler(self):
        server = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _send(self, status: int, body: bytes = b"", headers: dict | None = None, head: bool = False):
                self.send_response(status)
                for key, value in (headers or {}).items():
                    self.send_header(key, value)
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                if not head:
                    self.wfile.write(body)

            def _json(self, status: int, data, headers: dict | None = None):
                self._send(status, json.dumps(data).encode(), {"Content-Type": "application/json", **(headers or {})})

            def _error(self, status: int, code: str, message: str, head: bool = False):
                self._send(status, json.dumps({"error": message}).encode(),
                           {"X-Error-Code": code, "X-Error-Message": message, "Content-Type": "application/json"},
                           head=head)

            def _stream(self, data: bytes, extra: int, headers: dict, head: bool):
                """``data`` then ``extra`` zero bytes, with a Content-Length or chunked; stops when the client
                goes away (counting what it sent)."""
                self.send_response(200)
                for key, value in headers.items():
                    self.send_header(key, value)
                if server.chunked:
                    self.send_header("Transfer-Encoding", "chunked")
                else:
                    self.send_header("Content-Length", str(len(data) + extra))
                self.end_headers()
                if head:
                    return
                zeros = bytes(1 << 20)
                tail = (zeros[: min(len(zeros), extra - i)] for i in range(0, extra, len(zeros)))
                pieces = itertools.chain([data], tail)
                try:
                    for piece in pieces:
                        self.wfile.write(b"%x\r\n%s\r\n" % (len(piece), piece) if server.chunked else piece)
                        server.sent += len(piece)
                    if server.chunked:
                        self.wfile.write(b"0\r\n\r\n")
                except (BrokenPipeError, ConnectionResetError):
                    self.close_connection = True

            def _body(self) -> bytes:
                return self.rfile.read(int(self.headers.get("Content-Length", 0)))

            def do_POST(self):
                server.requests += 1
                path = unquote(urlparse(self.path).path)
                body = self._body()
                if path == "/api/repos/create":
                    data = json.loads(body)
                    repo_id = f"{data['organization']}/{data['name']}" if data.get("organization") else data["name"]
                    with server.lock:
                        if repo_id in server.repos:  # the Hub's 409 names the existing repo's url
                            return self._json(409, {"error": "You already created this model repo",
                                                    "url": f"{server.url}/{repo_id}"}, {"X-Error-Code": "RepoExists"})
                        repo = server.repos[repo_id] = Repo()
                        repo.commits["0" * 40] = {}
                        repo.branches["main"] = "0" * 40
                    return self._json(200, {"url": f"{server.url}/{repo_id}", "name": repo_id})
                if path == "/api/validate-yaml":
                    content = json.loads(body)["content"]
                    try:
                        yaml.safe_load(content.split("---")[1])
                    except (yaml.YAMLError, IndexError) as err:
                        return self._json(400, {"errors": [{"message": str(err)}]})
                    return self._json(200, {"errors": [], "warnings": []})
                parts = path.split("/")  # /api/models/ORG/NAME/<action>/<revision...>
                if len(parts) < 7 or parts[:3] != ["", "api", "models"]:
                    return self._error(404, "EntryNotFound", f"no route {path}")
                repo_id, action, revision = f"{parts[3]}/{parts[4]}", parts[5], "/".join(parts[6:])
                repo = server.repos.get(repo_id)
                if repo is None:
                    return self._error(404, "RepoNotFound", f"Repository {repo_id} not found")
                if action == "preupload":
                    files = json.loads(body)["files"]
                    return self._json(200, {"files": [{"path": f["path"], "uploadMode": "regular",
                                                       "shouldIgnore": False, "oid": None} for f in files]})
                if action == "branch":
                    with server.lock:
                        start = (json.loads(body).get("startingPoint") if body else None) or "main"
                        repo.branches[revision] = repo.branches.get(start, start)
                    return self._json(200, {})
                if action == "commit":
                    with server.lock:
                        parent = repo.branches.get(revision)
                        if parent is None:
                            return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}")
                        files = dict(repo.commits[parent])
                        summary = ""
                        for line in body.splitlines():
                            item = json.loads(line)
                            if item["key"] == "header":
                                summary = item["value"]["summary"]
                            elif item["key"] == "file":
                                files[item["value"]["path"]] = base64.b64decode(item["value"]["content"])
                            elif item["key"] == "deletedFile":
                                files.pop(item["value"]["path"], None)
                            else:
                                return self._error(400, "BadRequest", f"unsupported commit entry {item['key']}")
                        digest = hashlib.sha1(parent.encode() + summary.encode() + json.dumps(
                            {k: hashlib.sha256(v).hexdigest() for k, v in sorted(files.items())}).encode())
                        commit = digest.hexdigest()
                        repo.commits[commit] = files
                        repo.branches[revision] = commit
                    return self._json(200, {"commitUrl": f"{server.url}/{repo_id}/commit/{commit}",
                                            "commitOid": commit, "pullRequestUrl": None})
                return self._error(404, "EntryNotFound", f"no route {path}")

            def do_HEAD(self):
                self.do_GET(head=True)

            def do_GET(self, head: bool = False):
                server.requests += 1
                path = unquote(urlparse(self.path).path)
                parts = path.split("/")
                if parts[:3] == ["", "api", "models"] and len(parts) >= 6 and parts[5] == "revision":
                    repo_id, revision = f"{parts[3]}/{parts[4]}", "/".join(parts[6:])
                    repo = server.repos.get(repo_id)
                    if repo is None:
                        return self._error(404, "RepoNotFound", f"Repository {repo_id} not found", head)
                    found = repo.files_at(revision)
                    if found is None:
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                    commit, files = found
                    return self._json(200, {"id": repo_id, "modelId": repo_id, "sha": commit, "private": False,
                                            "siblings": [{"rfilename": f} for f in sorted(files)], "tags": []})
                if len(parts) >= 6 and parts[3] == "resolve":  # /ORG/NAME/resolve/REV/FILE
                    repo_id, revision, file = f"{parts[1]}/{parts[2]}", parts[4], "/".join(parts[5:])
                    repo = server.repos.get(repo_id)
                    found = repo.files_at(revision) if repo else None
                    if found is None:
                        return self._error(404, "RevisionNotFound", f"Invalid rev id: {revision}", head)
                    commit, files = found
                    if file not in files:
                        return self._error(404, "EntryNotFound", f"{file} does not exist", head)
                    data = files[file]
                    if file in server.corrupt:
                        data = bytes([data[0] ^ 0xFF]) + data[1:]
                    if server.delay_s and not head:
                        time.sleep(server.delay_s)
                    if not head:
                        server.downloads.append(file)
                    etag = hashlib.sha1(files[file]).hexdigest()
                    headers = {"X-Repo-Commit": commit, "ETag": f'"{etag}"', "Content-Type": "application/octet-stream"}
                    if file in server.inflate or server.chunked:
                        return self._stream(data, server.inflate.get(file, 0), headers, head)
                    server.sent += 0 if head else len(data)
                    return self._send(200, data, headers, head)
                return self._error(404, "EntryNotFound", f"no route {path}", head)

        return Handler
