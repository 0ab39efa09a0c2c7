"""The desk's server (``make desk``): notebook 00 as an app, behind a key, on this machine only.

``python -m crm_helpers.desk_server [--port 8866] [--lan] [--no-browser]`` starts a Jupyter server
with only the Voilà extension and prints the desk's address with a fresh key, as JupyterLab does::

    The desk: http://localhost:8866/voila/render/00_desk.ipynb?token=4Jx...

What the server guarantees, all by jupyter_server's own settings (no proxy of ours):

- **A key per start** (:func:`secrets.token_urlsafe`, 32 bytes): every page, file, script, API call
  and websocket needs it (``?token=`` once, then the login cookie it sets); without it the page
  redirects to a login form and the API answers 403, so no kernel is started. Only the login form
  and its styles are served without it.
- **The Host header is checked**: a request naming any other host than ``localhost``, ``127.0.0.1``
  or ``::1`` is refused with 403 even with the key (a web page cannot reach the desk by DNS
  rebinding). With ``--lan`` the server listens on every interface for a phone in the shop and
  also accepts this machine's name and LAN address, nothing else.
- **At most one kernel per open page, plus one standing by**: the page's shutdown call on closing
  ends its kernel (it carries the ``_xsrf`` cookie the page sets), and a kernel idle for
  :data:`CULL_IDLE_S` seconds with no page connected is ended (checked every :data:`CULL_INTERVAL_S`
  seconds). One more kernel waits for the next page (:func:`standby_kernel_manager`): started, the
  package imported and today's call list scored (:func:`crm_helpers.desk.warm_up`), so a page opens
  in about a second instead of starting a kernel and scoring the whole book (5–17 s); it is never
  culled, and ``--no-standby`` turns it off.
- **Nothing from the internet**: the ``desk`` Voilà template (``jupyter/voila/templates/desk``)
  leaves out the icon font the stock template fetches from a CDN, and the MathJax settings set to
  ``"null"`` make the page use the MathJax bundled with Voilà instead of fetching it from a CDN.
- No terminals, no JupyterLab: only the desk's notebook folder is served.
"""

from __future__ import annotations

import argparse
import ipaddress
import os
import re
import secrets
import socket
from typing import Any, Sequence

from traitlets.config import Config

from crm_helpers.i18n import DEFAULT, LanguageError, check_language, set_language, t
from crm_helpers.store.config import PROJECT_ROOT, report_language

DEFAULT_PORT = 8866
NOTEBOOK = "00_desk.ipynb"
DESK_PATH = f"/voila/render/{NOTEBOOK}"
"""The desk's page on the server (the URL path the printed address opens)."""
LOCAL_NAMES = ("localhost", "127.0.0.1", "::1")
"""Host names every desk accepts; any loopback address is accepted too (jupyter_server's rule)."""
CULL_IDLE_S = 600
"""A kernel with no page connected and idle this many seconds is ended."""
CULL_INTERVAL_S = 60
"""How often, in seconds, the server looks for idle kernels."""
TEMPLATE = "desk"
"""The Voilà template in ``jupyter/voila/templates/``: the stock "lab" one without the CDN icons."""
JUPYTER_DIR = PROJECT_ROOT / "jupyter"
"""Added to ``JUPYTER_PATH``, so Voilà finds the ``desk`` template in ``jupyter/voila/templates``."""
KERNEL_NAME = "crm-workbook"
"""The kernel of notebook 00 (its kernelspec), the one the standby kernel runs."""
STANDBY_DELAY_S = 15
"""A page that took the standby kernel gets this many seconds before the next one is started, so the
two do not share the processor while the page opens."""
WARM_UP = "import crm_helpers.desk\ncrm_helpers.desk.warm_up()"
"""What the standby kernel runs before any page asks for it (the store is ``CRM_DB``, as the page's)."""
_EXTENSIONS_OFF = ("jupyterlab", "jupyter_lsp", "jupyter_server_terminals", "notebook_shim", "nbclassic",
                   "jupyter_collaboration", "jupyter_server_ydoc")


def new_key() -> str:
    """A fresh random key (43 URL-safe characters, 256 bits)."""
    return secrets.token_urlsafe(32)


def lan_address() -> str | None:
    """This machine's address on the local network (the interface of its default route), or None
    when it has none. No packet is sent: connecting a UDP socket only picks the route."""
    with socket.socket(socket.AF_INET, socket.SOCK_DGRAM) as probe:
        try:
            probe.connect(("192.0.2.1", 9))  # TEST-NET-1: never routed anywhere, only looked up
        except OSError:
            return None
        address = probe.getsockname()[0]
    return None if ipaddress.ip_address(address).is_loopback else address


def allowed_hosts(*, lan: bool) -> list[str]:
    """The Host names the desk accepts: the local names, and with ``lan`` this machine's name and
    LAN address (what a phone on the shop's network types)."""
    hosts = list(LOCAL_NAMES)
    if lan:
        name = socket.gethostname()
        hosts += [name, f"{name}.local"]
        address = lan_address()
        if address:
            hosts.append(address)
    return hosts


def standby_kernel_manager() -> type:
    """jupyter_server's kernel manager with one kernel standing by for the desk's next page.

    The standby kernel is started when the server starts and again each time a page takes it; it
    runs :data:`WARM_UP` (the imports and today's call list, :func:`crm_helpers.desk.warm_up`). A
    request for notebook 00 (Voilà names the page in the kernel's ``SCRIPT_NAME``) gets it at once
    when it is ready; any other request, or one arriving before it is ready, starts a kernel as
    usual. The culler never ends it (no page is connected to it by design)."""
    import asyncio

    from jupyter_server.services.kernels.kernelmanager import AsyncMappingKernelManager
    from jupyter_server.utils import ensure_async
    from jupyter_server._tz import isoformat, utcnow
    from traitlets import Bool

    class StandbyKernelManager(AsyncMappingKernelManager):  # type: ignore[misc]
        standby = Bool(True, config=True, help="Keep one warm kernel waiting for the desk's next page.")

        def __init__(self, **kwargs: Any) -> None:
            super().__init__(**kwargs)
            self.ready: str | None = None
            self.warming: asyncio.Future[None] | None = None

        def fill(self, delay: float = 0.0) -> None:
            """Start warming a standby kernel in ``delay`` seconds unless one is ready or warming."""
            if self.standby and self.ready is None and self.warming is None:
                self.warming = asyncio.ensure_future(self._warm(delay))

        async def _warm(self, delay: float) -> None:
            kernel_id = None
            try:
                await asyncio.sleep(delay)
                kernel_id = await super().start_kernel(kernel_name=KERNEL_NAME, path="")
                client = self.get_kernel(kernel_id).client()
                client.start_channels()
                try:
                    await client.wait_for_ready(timeout=120)
                    reply = await client.execute_interactive(WARM_UP, timeout=None, output_hook=lambda _: None)
                finally:
                    client.stop_channels()
                if reply["content"]["status"] == "ok":
                    self.ready, kernel_id = kernel_id, None
                    self.log.info("The desk's standby kernel is ready: %s", self.ready)
                else:
                    self.log.warning("The desk's standby kernel could not warm up: %s", reply["content"].get("evalue"))
            except Exception as exc:  # noqa: BLE001 - a page then starts its own kernel, as without a standby
                self.log.warning("The desk's standby kernel did not start: %s", exc)
            finally:
                self.warming = None
                if kernel_id is not None and kernel_id in self:
                    await ensure_async(self.shutdown_kernel(kernel_id))

        async def start_kernel(self, *, kernel_id: str | None = None, path: Any = None, **kwargs: Any) -> str:
            wanted = str((kwargs.get("env") or {}).get("SCRIPT_NAME", "")).endswith(NOTEBOOK)
            if kernel_id is None and wanted and self.ready is not None and self.ready in self:
                kernel_id, self.ready = self.ready, None
                self.get_kernel(kernel_id).last_activity = utcnow()
                self.log.info("The desk's standby kernel %s serves a page", kernel_id)
                self.fill(STANDBY_DELAY_S)
                return kernel_id
            started = await super().start_kernel(kernel_id=kernel_id, path=path, **kwargs)
            if wanted:
                self.fill(STANDBY_DELAY_S)
            return str(started)

        def kernel_model(self, kernel_id: str) -> dict[str, Any]:
            """jupyter_server's model of a kernel; a kernel in its first event-loop turn is "starting".

            jupyter_client lists a new kernel one turn before jupyter_server gives it its
            ``last_activity``; a ``GET /api/kernels`` landing in that turn answered 500 (the standby
            kernel starts with the server, so the desk met it; jupyter-server/enterprise_gateway#1395)."""
            kernel = self._kernels.get(kernel_id)
            if kernel is not None and not hasattr(kernel, "last_activity"):
                return {"id": kernel_id, "name": kernel.kernel_name, "last_activity": isoformat(utcnow()),
                        "execution_state": "starting", "connections": self._kernel_connections.get(kernel_id, 0)}
            return dict(super().kernel_model(kernel_id))

        async def cull_kernel_if_idle(self, kernel_id: str) -> None:
            if kernel_id != self.ready:
                await super().cull_kernel_if_idle(kernel_id)

    return StandbyKernelManager


def server_config(key: str, *, port: int = DEFAULT_PORT, lan: bool = False, open_browser: bool = True,
                  standby: bool = True) -> Config:
    """The jupyter_server settings of the desk (see the module docstring for what each one holds)."""
    c = Config()
    c.ServerApp.ip = "0.0.0.0" if lan else "127.0.0.1"
    c.ServerApp.port = port
    c.ServerApp.port_retries = 0  # the printed port is the port, or the start fails and says so
    c.ServerApp.open_browser = open_browser
    c.ServerApp.root_dir = str(PROJECT_ROOT / "notebooks")
    c.ServerApp.default_url = DESK_PATH
    c.ServerApp.allow_remote_access = False  # the Host check, kept on even when listening on the LAN
    c.ServerApp.local_hostnames = allowed_hosts(lan=lan)
    c.ServerApp.terminals_enabled = False
    c.ServerApp.allow_root = True  # as Voila alone did: the kernel runs the desk's notebook, as the owner
    # "null" (a string, as Voila's page reads it): the MathJax bundled with Voila, not the CDN's
    c.ServerApp.tornado_settings = {"mathjax_url": "null", "mathjax_config": "null"}
    c.ServerApp.jpserver_extensions = {"voila": True, **{name: False for name in _EXTENSIONS_OFF}}
    c.IdentityProvider.token = key
    c.ServerApp.kernel_manager_class = standby_kernel_manager()
    c.StandbyKernelManager.standby = standby
    c.MappingKernelManager.cull_idle_timeout = CULL_IDLE_S
    c.MappingKernelManager.cull_interval = CULL_INTERVAL_S
    c.MappingKernelManager.cull_connected = False
    c.VoilaConfiguration.template = TEMPLATE
    c.VoilaConfiguration.show_tracebacks = False
    c.VoilaExporter.language_code = report_language()  # the page's <html lang>: "zh" for CRM_LANG=zh (ISO 639-1)
    c.VoilaConfiguration.prelaunch_hook = translated_page  # its title and section sentences in that language
    return c


def translated_page(handler: Any, notebook: Any, *, cwd: str) -> Any:
    """Voilà's ``prelaunch_hook``: the desk's notebook as it was read for one page, with its Markdown
    (the title and the sentences opening its two sections) put in the desk's language by the
    pack's own :func:`crm_helpers.report.runner.translate_markdown`; English: as written."""
    if set_language(report_language()) != DEFAULT:
        from crm_helpers.report.runner import translate_markdown

        translate_markdown(notebook)
    return notebook


def desk_url(key: str, *, host: str = "localhost", port: int = DEFAULT_PORT) -> str:
    """The address to open: the desk's page with its key."""
    return f"http://{host}:{port}{DESK_PATH}?token={key}"


def _accept_listed_addresses() -> None:
    """jupyter_server accepts an IP address as Host only when it is a loopback one; a phone on the
    LAN sends this machine's LAN address, which ``local_hostnames`` lists. Accept a Host that is
    listed there, word for word, as well (a DNS-rebinding page always sends its own domain name)."""
    from jupyter_server.base.handlers import JupyterHandler

    loopback_only = JupyterHandler.check_host

    def check_host(self: JupyterHandler) -> bool:
        match = re.match(r"^\[?(.*?)\]?(:\d+)?$", self.request.host)
        return (match is not None and match.group(1) in self.settings.get("local_hostnames", ())) \
            or loopback_only(self)

    JupyterHandler.check_host = check_host  # type: ignore[method-assign]


def _page_sets_xsrf_cookie() -> None:
    """The desk's page, when closed, posts its kernel's shutdown with the ``_xsrf`` cookie's value;
    jupyter_server sets that cookie only on the pages it renders itself, so a page opened with
    ``?token=`` had none and the shutdown was refused ("'_xsrf' argument missing"), leaving its
    kernel running. The Voilà page handler sets it for a signed-in visitor, before rendering."""
    from voila.tornado.handler import TornadoVoilaHandler

    prepare = TornadoVoilaHandler.prepare

    async def prepare_with_xsrf_cookie(self: TornadoVoilaHandler) -> None:
        await prepare(self)
        if self.current_user is not None:
            self.xsrf_token  # noqa: B018 - reading it sets the cookie (tornado)

    TornadoVoilaHandler.prepare = prepare_with_xsrf_cookie  # type: ignore[method-assign]


def _static_files_need_the_key() -> None:
    """Voila serves its page's scripts, styles, themes and widget code without asking for the key,
    and its template files without the Host check. The desk serves them through subclasses that
    ask for both, as every other route does; only jupyter_server's own ``/static/`` (the login
    page's styles) and the login page stay open."""
    from jupyter_server.base.handlers import JupyterHandler
    from tornado import web
    import voila.server_extension as extension

    def keyed(base: type) -> type:
        @web.authenticated
        async def get(self: Any, path: str, include_body: bool = True) -> None:
            await base.get(self, path, include_body)

        bases = (base,) if issubclass(base, JupyterHandler) else (JupyterHandler, base)
        return type(f"Keyed{base.__name__}", bases, {"get": get})

    for name in ("MultiStaticFileHandler", "TemplateStaticFileHandler", "FileFindHandler", "ThemesHandler"):
        setattr(extension, name, keyed(getattr(extension, name)))


def main(argv: Sequence[str] | None = None) -> None:
    """Start the desk's server and print its address with a fresh key; runs until Ctrl-C."""
    parser = argparse.ArgumentParser(prog="python -m crm_helpers.desk_server", description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=DEFAULT_PORT)
    parser.add_argument("--lan", action="store_true", help="listen on the local network too (a phone in the shop)")
    parser.add_argument("--no-browser", action="store_true", help="do not open a browser")
    parser.add_argument("--no-standby", action="store_true",
                        help="no warm kernel waiting for the next page (each page starts its own: 5-17 s)")
    parser.add_argument("--lang", default=None, metavar="LANG",
                        help="the desk's language: en or zh (default: $CRM_LANG, else en)")
    args = parser.parse_args(argv)
    if args.lang:
        try:
            os.environ["CRM_LANG"] = check_language(args.lang)  # the kernels inherit it (Desk.open reads it)
        except LanguageError as exc:
            parser.error(f"{exc} (--lang or CRM_LANG)")
    key = new_key()
    os.environ["JUPYTER_PATH"] = os.pathsep.join(filter(None, [str(JUPYTER_DIR), os.environ.get("JUPYTER_PATH")]))
    from jupyter_server.serverapp import ServerApp

    _page_sets_xsrf_cookie()
    _static_files_need_the_key()
    if args.lan:
        _accept_listed_addresses()
    app = ServerApp.instance(config=server_config(key, port=args.port, lan=args.lan,
                                                  open_browser=not args.no_browser, standby=not args.no_standby))
    app.initialize(argv=[])
    from tornado.ioloop import IOLoop

    IOLoop.current().add_callback(app.kernel_manager.fill)
    set_language(report_language())
    print("\n" + t("The desk: {address}", address=desk_url(key, port=args.port)), flush=True)
    if args.lan:
        address = lan_address()
        if address:
            print(t("On a phone on this network: {address}", address=desk_url(key, host=address, port=args.port)),
                  flush=True)
        else:
            print(t("This machine has no address on a local network: only this machine can open the desk."),
                  flush=True)
    print(t("Anyone with this address can use the desk: share it only with people who may. Ctrl-C stops it.") + "\n",
          flush=True)
    app.start()


if __name__ == "__main__":
    main()
