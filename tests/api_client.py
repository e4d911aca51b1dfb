"""A small HTTP client for tests: JSON in and out, and a cookie jar like a browser's."""

from __future__ import annotations

import json
from dataclasses import dataclass
from http.cookies import SimpleCookie
from typing import Any

from tornado.httpclient import AsyncHTTPClient, HTTPResponse


@dataclass
class Reply:
    status: int
    body: Any
    headers: Any
    raw: bytes

    @property
    def set_cookies(self) -> list[str]:
        return self.headers.get_list("Set-Cookie")


def keyed(key: str) -> dict[str, str]:
    """The headers of a write sent with an Idempotency-Key."""
    return {"Idempotency-Key": key}


class ApiClient:
    def __init__(self, base_url: str) -> None:
        self.base_url = base_url
        self.cookies: dict[str, str] = {}
        self._http = AsyncHTTPClient()

    async def request(
        self,
        method: str,
        path: str,
        *,
        json_body: Any = None,
        body: bytes | str | None = None,
        headers: dict[str, str] | None = None,
        send_cookies: bool = True,
    ) -> Reply:
        headers = dict(headers or {})
        if json_body is not None:
            body = json.dumps(json_body)
            headers.setdefault("Content-Type", "application/json")
        if send_cookies and self.cookies:
            headers["Cookie"] = self.cookie_header()
        if body is None and method in ("POST", "PUT", "PATCH"):
            body = b""
        response: HTTPResponse = await self._http.fetch(
            self.base_url + path,
            method=method,
            body=body,
            headers=headers,
            raise_error=False,
            allow_nonstandard_methods=True,
            follow_redirects=False,
            request_timeout=60,
        )
        if response.code == 599:
            raise response.error or RuntimeError("request failed")
        self._remember_cookies(response)
        raw = response.body or b""
        parsed: Any = None
        if raw and response.headers.get("Content-Type", "").startswith("application/json"):
            parsed = json.loads(raw)
        return Reply(response.code, parsed, response.headers, raw)

    def cookie_header(self) -> str:
        """The Cookie header a browser would send, for tests that speak raw HTTP."""
        return "; ".join(f"{k}={v}" for k, v in self.cookies.items())

    def _remember_cookies(self, response: HTTPResponse) -> None:
        for header in response.headers.get_list("Set-Cookie"):
            cookie = SimpleCookie()
            cookie.load(header)
            for name, morsel in cookie.items():
                if morsel.value == "" or morsel["max-age"] == "0" or "1970" in morsel["expires"]:
                    self.cookies.pop(name, None)
                else:
                    self.cookies[name] = morsel.value

    async def get(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("GET", path, **kwargs)

    async def post(self, path: str, json_body: Any = None, **kwargs: Any) -> Reply:
        return await self.request("POST", path, json_body=json_body, **kwargs)

    async def delete(self, path: str, **kwargs: Any) -> Reply:
        return await self.request("DELETE", path, **kwargs)

    async def documented_answer(self, method: str, template: str, status: int) -> Any:
        """The example answer /openapi.json gives for `status` of an operation: a refusal's
        message, as a test compares it with the real answer."""
        document = (await self.get("/openapi.json")).body
        return document["paths"][template][method.lower()]["responses"][str(status)]["content"][
            "application/json"]["example"]

    # ---- accounts ----

    async def register(self, username: str, password: str = "correct horse") -> Reply:
        return await self.post("/auth/register", {"username": username, "password": password})

    async def login(self, username: str, password: str = "correct horse") -> Reply:
        return await self.post("/auth/login", {"username": username, "password": password})

    async def sign_up(self, username: str, password: str = "correct horse") -> dict[str, Any]:
        """Registers and logs in; returns the User object."""
        assert (await self.register(username, password)).status == 201
        reply = await self.login(username, password)
        assert reply.status == 200, reply.body
        return reply.body["user"]
