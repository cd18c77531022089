#!/usr/bin/env python3
"""Developer environment of payment_dunning: a private PostgreSQL, Odoo 18 and the addon.

    ./dev start   Odoo at http://localhost:8069 with the addon and demo data (database payment_dunning)
    ./dev test    the addon's whole test suite on a fresh database, then an install without demo data
    ./dev script  run a bench/ or race script against a fresh database with the addon installed
    ./dev pot     regenerate i18n/payment_dunning.pot
    ./dev bench-peers  the OCA peers (credit control, contract) and this addon on the same data
    ./dev stop-db stop the private PostgreSQL cluster

Only the standard library is used here: this runs before anything else is installed.
"""

import argparse
import datetime
import hashlib
import importlib.util
import os
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request
import zipfile

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DEVENV = os.path.join(ROOT, ".devenv")
MODULE = "payment_dunning"
PG_PORT = int(os.environ.get("PAYMENT_DUNNING_PG_PORT", "54329"))
PG_BIN = "/usr/lib/postgresql/15/bin"
ODOO_REQUIREMENTS_URL = "https://raw.githubusercontent.com/odoo/odoo/18.0/requirements.txt"
ODOO_SOURCE_URL = "https://nightly.odoo.com/18.0/nightly/src/odoo_18.0.latest.tar.gz"
IS_ROOT = os.geteuid() == 0
BATCH_RUN = ["--stop-after-init", "--no-http"]
INITDB_OPTIONS = ["--auth=trust", "-E", "UTF8", "--locale=C.UTF-8"]
# import name -> pip requirement, for the addon's and the test tooling's own needs
PYTHON_DEPENDENCIES = {
    "phonenumbers": "phonenumbers",
    "freezegun": "freezegun",
    "websocket": "websocket-client",
    "aiosmtpd": "aiosmtpd",
    # gevent's own dependency, which Odoo's websocket process (prefork mode) needs
    "zope.interface": "zope.interface",
}


def say(message):
    print(f"[dev] {message}", flush=True)


def fail(message, code=1):
    print(f"[dev] ERROR: {message}", file=sys.stderr, flush=True)
    sys.exit(code)


def run(cmd, **kwargs):
    say("$ " + " ".join(cmd))
    return subprocess.run(cmd, check=True, **kwargs)


# ---------------------------------------------------------------------------------- Odoo itself


def odoo_version():
    probe = "import odoo.release as r; print(r.version_info[0])"
    result = subprocess.run([sys.executable, "-c", probe], capture_output=True, text=True, check=False)
    return result.stdout.strip() if result.returncode == 0 else None


def reachable(url, timeout=15):
    try:
        with urllib.request.urlopen(urllib.request.Request(url, method="HEAD"), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_odoo():
    forced = os.environ.get("PAYMENT_DUNNING_FORCE_ODOO_INSTALL") == "1"
    if not forced and odoo_version() == "18":
        return
    say(f"Odoo 18 is not importable by {sys.executable}: installing Odoo 18.0 from its upstream source")
    for url in (ODOO_REQUIREMENTS_URL, ODOO_SOURCE_URL):
        if not reachable(url):
            fail(
                f"Odoo 18.0 is not importable by {sys.executable} and its upstream source {url} cannot "
                "be reached. Install Odoo 18.0 (https://github.com/odoo/odoo, branch 18.0) into this "
                "Python, e.g. pip install -r requirements.txt && pip install . in its checkout, then rerun.",
                code=3,
            )
    with urllib.request.urlopen(ODOO_REQUIREMENTS_URL, timeout=60) as response:
        requirements = response.read().decode()
    # Python 3.11: cbor2 5.4.2 does not build and python-ldap is optional
    requirements = re.sub(r"^cbor2==5\.4\.2.*$", "cbor2==5.6.2", requirements, flags=re.M)
    requirements = re.sub(r"^python-ldap.*$", "", requirements, flags=re.M)
    os.makedirs(DEVENV, exist_ok=True)
    requirements_file = os.path.join(DEVENV, "odoo-requirements.txt")
    with open(requirements_file, "w", encoding="utf-8") as handle:
        handle.write(requirements)
    pip = [sys.executable, "-m", "pip", "install", "--quiet"]
    run([*pip, "setuptools<70", "wheel"])
    run([*pip, "-r", requirements_file])
    run([*pip, "--no-build-isolation", "--no-deps", ODOO_SOURCE_URL])
    if odoo_version() != "18":
        fail("Odoo 18.0 was installed but cannot be imported; see the pip output above.")


def ensure_python_dependencies():
    missing = [req for name, req in PYTHON_DEPENDENCIES.items() if importlib.util.find_spec(name) is None]
    if missing:
        say(f"installing the addon's Python dependencies: {', '.join(missing)}")
        run([sys.executable, "-m", "pip", "install", "--quiet", "-r", os.path.join(ROOT, "requirements.txt")])


def ensure_debian_package(command, package):
    if shutil.which(command) or os.path.exists(command):
        return
    if not IS_ROOT:
        fail(f"{command} is missing: install Debian's {package} package (sudo apt-get install {package}).")
    say(f"installing Debian's {package}")
    env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
    run(["apt-get", "update", "-qq"], env=env)
    run(["apt-get", "install", "-y", "-qq", package], env=env)


def chromium_installed():
    return any(shutil.which(name) for name in ("chromium", "chromium-browser", "google-chrome"))


# ---------------------------------------------------------------------------------- PostgreSQL


def as_postgres(cmd):
    return ["runuser", "-u", "postgres", "--", *cmd] if IS_ROOT else cmd


def traversable_by_postgres(path):
    if not IS_ROOT:
        return True
    check = subprocess.run(as_postgres(["test", "-w", path]), capture_output=True, check=False)
    return check.returncode == 0


def cluster_dir():
    """The cluster lives in the checkout unless the postgres user cannot reach it there."""
    local = os.path.join(DEVENV, "pg")
    os.makedirs(local, exist_ok=True)
    if IS_ROOT:
        shutil.chown(local, "postgres")
    if traversable_by_postgres(local):
        return local
    digest = hashlib.sha1(ROOT.encode()).hexdigest()[:10]
    fallback = f"/var/tmp/payment_dunning-pg-{digest}"
    os.makedirs(fallback, exist_ok=True)
    if IS_ROOT:
        shutil.chown(fallback, "postgres")
    return fallback


def external_db():
    return os.environ.get("PAYMENT_DUNNING_PG") == "external"


def db_options():
    if external_db():
        options = [
            f"--db_host={os.environ.get('PGHOST', '127.0.0.1')}",
            f"--db_port={os.environ.get('PGPORT', '5432')}",
            f"--db_user={os.environ.get('PGUSER', 'odoo')}",
        ]
        if os.environ.get("PGPASSWORD"):
            options.append(f"--db_password={os.environ['PGPASSWORD']}")
        return options
    return ["--db_host=127.0.0.1", f"--db_port={PG_PORT}", "--db_user=odoo"]


def psql_env():
    if external_db():
        return dict(os.environ)
    return dict(os.environ, PGHOST="127.0.0.1", PGPORT=str(PG_PORT), PGUSER="odoo", PGDATABASE="postgres")


def ensure_postgres():
    if external_db():
        return
    ensure_debian_package(os.path.join(PG_BIN, "initdb"), "postgresql")
    base = cluster_dir()
    data = os.path.join(base, "data")
    pg_ctl = [os.path.join(PG_BIN, "pg_ctl"), "-D", data]
    if not os.path.exists(os.path.join(data, "PG_VERSION")):
        say(f"creating a private PostgreSQL cluster in {data}")
        subprocess.run(
            as_postgres([os.path.join(PG_BIN, "initdb"), "-D", data, "-U", "odoo", *INITDB_OPTIONS]),
            check=True,
            stdout=subprocess.DEVNULL,
            cwd="/",
        )
        settings = (
            f"\nport = {PG_PORT}\nlisten_addresses = '127.0.0.1'\nunix_socket_directories = '{base}'\n"
            # a throw-away development cluster: durability traded for speed
            "fsync = off\nsynchronous_commit = off\nfull_page_writes = off\n"
            "shared_buffers = 512MB\nmax_connections = 200\n"
        )
        subprocess.run(
            as_postgres(["sh", "-c", f"cat >> {data}/postgresql.conf"]),
            input=settings.encode(),
            check=True,
            cwd="/",
        )
    status = subprocess.run(as_postgres([*pg_ctl, "status"]), capture_output=True, check=False, cwd="/")
    if status.returncode != 0:
        say(f"starting PostgreSQL on 127.0.0.1:{PG_PORT}")
        log = os.path.join(base, "postgresql.log")
        started = subprocess.run(
            as_postgres([*pg_ctl, "-l", log, "-w", "start"]), stdout=subprocess.DEVNULL, check=False, cwd="/"
        )
        if started.returncode != 0:
            with open(log, encoding="utf-8", errors="replace") as handle:
                tail = "".join(handle.readlines()[-5:])
            fail(
                f"PostgreSQL did not start (is port {PG_PORT} taken? set PAYMENT_DUNNING_PG_PORT). "
                f"Last lines of {log}:\n{tail}"
            )
    for _attempt in range(60):
        with socket.socket() as sock:
            if sock.connect_ex(("127.0.0.1", PG_PORT)) == 0:
                return
        time.sleep(0.5)
    fail(f"PostgreSQL did not start; see {base}/postgresql.log")


def stop_postgres():
    base = cluster_dir()
    data = os.path.join(base, "data")
    if os.path.exists(os.path.join(data, "PG_VERSION")):
        subprocess.run(
            as_postgres([os.path.join(PG_BIN, "pg_ctl"), "-D", data, "-m", "fast", "stop"]),
            check=False,
            cwd="/",
        )


def database_exists(name):
    result = subprocess.run(
        ["psql", "-Atc", f"SELECT 1 FROM pg_database WHERE datname = '{name}'"],
        env=psql_env(),
        capture_output=True,
        text=True,
        check=True,
    )
    return result.stdout.strip() == "1"


def drop_database(name):
    subprocess.run(["dropdb", "--if-exists", "--force", name], env=psql_env(), check=True)


# ---------------------------------------------------------------------------------- Odoo runs


def addons_path():
    """Expose the checkout, whatever its directory name, as the addon payment_dunning.

    The link lives outside the checkout: inside it, tools that walk the module (the translation
    export) would follow it back into the checkout again and again.
    """
    digest = hashlib.sha1(ROOT.encode()).hexdigest()[:10]
    addons = os.path.join(tempfile.gettempdir(), f"payment_dunning-addons-{digest}")
    os.makedirs(addons, exist_ok=True)
    link = os.path.join(addons, MODULE)
    if os.path.islink(link) and os.readlink(link) != ROOT:
        os.unlink(link)
    if not os.path.islink(link):
        os.symlink(ROOT, link)
    odoo_addons = subprocess.run(
        [
            sys.executable,
            "-c",
            "import odoo, os; print(os.path.join(os.path.dirname(odoo.__file__), 'addons'))",
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout.strip()
    return f"{addons},{odoo_addons}"


def odoo_launcher():
    """A file that starts Odoo, as ``odoo-bin`` does: prefork mode re-runs ``sys.argv[0]`` for its
    websocket process, which ``python -m odoo`` cannot be."""
    path = os.path.join(DEVENV, "odoo-bin")
    text = "import odoo\n\nif __name__ == '__main__':\n    odoo.cli.main()\n"
    os.makedirs(DEVENV, exist_ok=True)
    if not os.path.exists(path) or open(path, encoding="utf-8").read() != text:
        with open(path, "w", encoding="utf-8") as handle:
            handle.write(text)
    return path


def odoo_command(database, *options):
    return [
        sys.executable,
        odoo_launcher(),
        f"--addons-path={addons_path()}",
        f"--data-dir={os.path.join(DEVENV, 'filestore')}",
        # -d without --db-filter: Odoo serves this database only and, unlike with a filter, never
        # lists the server's databases (a new PostgreSQL connection) for requests without a session
        # such as the gateways' webhooks
        "-d",
        database,
        *db_options(),
        *options,
    ]


def write_script_config(database, extra_addons=None):
    """An Odoo configuration file for the scripts of bench/ (they parse it with -c)."""
    path = os.path.join(DEVENV, "odoo.conf")
    options = dict(option.lstrip("-").split("=", 1) for option in db_options())
    paths = addons_path() + (f",{extra_addons}" if extra_addons else "")
    lines = ["[options]", f"addons_path = {paths}", f"data_dir = {os.path.join(DEVENV, 'filestore')}"]
    lines += [f"{key} = {value}" for key, value in options.items()]
    with open(path, "w", encoding="utf-8") as handle:
        handle.write("\n".join(lines) + "\n")
    return path


def free_port():
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def prepare(browser=False):
    ensure_odoo()
    ensure_python_dependencies()
    if browser and not chromium_installed():
        ensure_debian_package("chromium", "chromium")
    # Odoo's PDF engine: account statements are real PDFs (a test checks it)
    ensure_debian_package("wkhtmltopdf", "wkhtmltopdf")
    ensure_postgres()


# ---------------------------------------------------------------------------------- commands


# the demo payment provider lets the pay-now page be tried without a real account
DEMO_MODULES = f"{MODULE},payment_demo"


def production_options(workers, cron_workers, http_port):
    """Odoo's prefork mode as a production guide sets it (README, "Deploying"): HTTP workers, cron
    workers, the websocket port, and time and memory limits that recycle a runaway worker."""
    if not workers:
        return [f"--max-cron-threads={cron_workers}"]
    return [
        f"--workers={workers}",
        f"--max-cron-threads={cron_workers}",
        f"--gevent-port={http_port + 3}",
        "--limit-time-cpu=600",
        "--limit-time-real=1200",
        "--limit-time-real-cron=1800",
        f"--limit-memory-soft={2048 * 1024 * 1024}",
        f"--limit-memory-hard={2560 * 1024 * 1024}",
        "--limit-request=8192",
        f"--db_maxconn={max(32, 4 * (workers + cron_workers))}",
    ]


def cmd_start(args):
    prepare()
    if not database_exists(args.db):
        say(f"creating database {args.db} with {MODULE} and demo data")
        subprocess.run(odoo_command(args.db, "-i", DEMO_MODULES, "--stop-after-init", "--no-http"), check=True)
        update = []
    else:
        update = ["-u", MODULE]
    mode = f"{args.workers} workers and {args.cron_workers} cron workers" if args.workers else "threaded mode"
    say(f"Odoo starts at http://localhost:{args.http_port} ({mode}; login admin, password admin); Ctrl+C stops it")
    # loopback only: the demo database logs in with admin/admin
    server = [f"--http-port={args.http_port}", "--http-interface=127.0.0.1"]
    server += production_options(args.workers, args.cron_workers, args.http_port)
    os.execv(sys.executable, odoo_command(args.db, *update, *server))


RESULT_RE = re.compile(r"odoo\.tests\.result: (\d+) failed, (\d+) error\(s\) of (\d+) tests")
SKIPPED_RE = re.compile(r"odoo\.addons\.payment_dunning\.\S+: skipped ")
ERROR_RE = re.compile(r" (ERROR|CRITICAL) ")


def run_logged(cmd, log_path, echo):
    """Run an Odoo process, keep its whole log, show warnings, errors and test results."""
    say("$ " + " ".join(cmd))
    lines = []
    showing = False
    with (
        open(log_path, "w", encoding="utf-8") as log,
        subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True, errors="replace") as process,
    ):
        for line in process.stdout:
            log.write(line)
            lines.append(line)
            if re.match(r"\d{4}-\d\d-\d\d ", line):
                showing = echo(line)
            if showing:
                sys.stdout.write(line)
        returncode = process.wait()
    return returncode, lines


def echo_test_line(line):
    return bool(
        ERROR_RE.search(line)
        or " WARNING " in line
        or "odoo.tests.result" in line
        or "odoo.tests.stats" in line
        or SKIPPED_RE.search(line)
    )


def cmd_test(args):
    prepare(browser=True)
    logs = os.path.join(DEVENV, "logs")
    os.makedirs(logs, exist_ok=True)
    stamp = datetime.datetime.now().strftime("%Y%m%d-%H%M%S")
    # a second checkout or a parallel run names its own database
    database = os.environ.get("PAYMENT_DUNNING_TEST_DB", f"{MODULE}_test")
    drop_database(database)
    log_path = os.path.join(logs, f"test-{stamp}.log")
    started = time.time()
    returncode, lines = run_logged(
        odoo_command(
            database,
            "-i",
            # the demo payment provider pays in the pay-now tours
            DEMO_MODULES,
            "--test-enable",
            f"--test-tags={args.tags}",
            "--stop-after-init",
            f"--http-port={free_port()}",
            "--http-interface=127.0.0.1",
            "--log-level=info",
            "--max-cron-threads=0",
        ),
        log_path,
        echo_test_line,
    )
    failed, errors, total = 0, 0, 0
    for line in lines:
        match = RESULT_RE.search(line)
        if match:
            failed, errors, total = (int(group) for group in match.groups())
    skipped = sum(1 for line in lines if SKIPPED_RE.search(line))
    problems = []
    if returncode != 0:
        problems.append(f"Odoo exited with status {returncode}")
    if total == 0:
        problems.append("no test ran")
    if skipped:
        problems.append(f"{skipped} test(s) skipped (a skipped test counts as failed)")
    if not any(RESULT_RE.search(line) for line in lines):
        problems.append("Odoo printed no test result (did the module fail to install?)")
    say(f"tests took {time.time() - started:.0f}s; full log: {log_path}")
    if args.nodemo_check:
        problems += check_install_without_demo(logs, stamp)
    for problem in problems:
        say(f"FAILED: {problem}")
    bad = failed + errors + skipped
    if problems and bad == 0:
        bad = 1
    print(f"{failed} failed, {errors} error(s) of {total} tests")
    print(f"{max(total - failed - errors - skipped, 0)} passed, {bad} failed", flush=True)
    return 1 if bad else 0


def check_install_without_demo(logs, stamp):
    database = f"{MODULE}_nodemo"
    drop_database(database)
    log_path = os.path.join(logs, f"install-nodemo-{stamp}.log")
    started = time.time()
    returncode, lines = run_logged(
        odoo_command(
            database, "-i", MODULE, "--without-demo=all", "--stop-after-init", "--no-http", "--log-level=info"
        ),
        log_path,
        lambda line: bool(ERROR_RE.search(line)),
    )
    say(f"install without demo data took {time.time() - started:.0f}s; log: {log_path}")
    drop_database(database)
    if returncode != 0 or any(ERROR_RE.search(line) for line in lines):
        return ["the module does not install cleanly without demo data"]
    return []


def fresh_database(name):
    """A new database with the addon installed, without demo data."""
    drop_database(name)
    subprocess.run(
        odoo_command(name, "-i", MODULE, "--without-demo=all", "--stop-after-init", "--no-http", "--log-level=warn"),
        check=True,
    )


def cmd_script(args):
    """Run a script of bench/ against a fresh database with the addon installed."""
    prepare()
    database = os.environ.get("PAYMENT_DUNNING_SCRIPT_DB", f"{MODULE}_script")
    fresh_database(database)
    config = write_script_config(database)
    result = subprocess.run([sys.executable, args.path, "-c", config, "-d", database, *args.script_args], check=False)
    drop_database(database)
    return result.returncode


def cmd_pot(_args):
    """Regenerate i18n/payment_dunning.pot from a fresh install."""
    prepare()
    database = f"{MODULE}_pot"
    fresh_database(database)
    pot = os.path.join(ROOT, "i18n", f"{MODULE}.pot")
    subprocess.run(
        odoo_command(database, f"--i18n-export={pot}", f"--modules={MODULE}", "--stop-after-init", "--no-http"),
        check=True,
    )
    drop_database(database)
    missing = merge_translation(pot, os.path.join(ROOT, "i18n", "es.po"))
    say(f"wrote {pot} and merged it into i18n/es.po; {missing} term(s) to translate there")
    return 0


def merge_translation(pot_path, po_path):
    """Bring a .po file in line with the template, keeping its translations; returns the untranslated."""
    import polib

    translated = {}
    if os.path.exists(po_path):
        translated = {entry.msgid: entry.msgstr for entry in polib.pofile(po_path)}
    po = polib.pofile(pot_path)
    po.metadata.update({"Language": "es", "Plural-Forms": "nplurals=2; plural=(n != 1);"})
    for entry in po:
        entry.msgstr = translated.get(entry.msgid, "")
    po.save(po_path)
    return sum(1 for entry in po if not entry.msgstr)


def cmd_load(args):
    """The load test of bench/load (README, "Load") on a fresh database."""
    args.path = os.path.join(ROOT, "bench", "load", "run_load.py")
    return cmd_script(args)


PEERS = ("odoo-addon-account-credit-control==18.0.*", "odoo-addon-contract==18.0.*")
PEER_MODULES = ("account_credit_control", "contract")


def ensure_peers():
    """OCA's credit control and contract addons from PyPI, unpacked outside the checkout (they are AGPL:
    benchmarked, never imported by the addon nor shipped). Returns their addons directory."""
    cache = os.path.join(os.path.expanduser("~"), ".cache", MODULE, "peers")
    addons = os.path.join(cache, "addons", "odoo", "addons")
    if all(os.path.exists(os.path.join(addons, module, "__manifest__.py")) for module in PEER_MODULES):
        return addons
    wheels = os.path.join(cache, "wheels")
    os.makedirs(wheels, exist_ok=True)
    say("downloading the peers from PyPI: " + ", ".join(PEERS))
    download = subprocess.run(
        [sys.executable, "-m", "pip", "download", "--no-deps", "--quiet", "-d", wheels, *PEERS], check=False
    )
    if download.returncode:
        fail("the OCA peers could not be downloaded from PyPI (pip download failed; see above)")
    for wheel in sorted(os.listdir(wheels)):
        if wheel.endswith(".whl"):
            with zipfile.ZipFile(os.path.join(wheels, wheel)) as archive:
                archive.extractall(os.path.join(cache, "addons"))
    return addons


def cmd_bench_peers(args):
    """bench/peers (README, "Side by side with the peers") on a fresh database with the peers installed."""
    prepare()
    peers = ensure_peers()
    database = os.environ.get("PAYMENT_DUNNING_SCRIPT_DB", f"{MODULE}_peers")
    drop_database(database)
    extra = f"--addons-path={addons_path()},{peers}"
    modules = ",".join((MODULE, *PEER_MODULES))
    command = [option if not option.startswith("--addons-path=") else extra for option in odoo_command(database)]
    subprocess.run(
        [*command, "-i", modules, "--without-demo=all", "--stop-after-init", "--no-http", "--log-level=warn"],
        check=True,
    )
    config = write_script_config(database, extra_addons=peers)
    script = os.path.join(ROOT, "bench", "peers", "bench_peers.py")
    result = subprocess.run([sys.executable, script, "-c", config, "-d", database, *args.script_args], check=False)
    drop_database(database)
    return result.returncode


def cmd_stop_db(_args):
    stop_postgres()
    return 0


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    commands = parser.add_subparsers(dest="command", required=True)
    start = commands.add_parser("start", help="run Odoo with the addon and demo data")
    start.add_argument("--db", default=MODULE)
    start.add_argument("--http-port", type=int, default=8069)
    start.add_argument(
        "--workers", type=int, default=0, help="HTTP worker processes (prefork, as in production); 0: threaded"
    )
    start.add_argument("--cron-workers", type=int, default=2, help="processes (or threads) running the jobs")
    start.set_defaults(func=cmd_start)
    test = commands.add_parser("test", help="run the addon's tests on a fresh database")
    test.add_argument("--tags", default=f"/{MODULE}", help="Odoo --test-tags (default: the whole addon)")
    test.add_argument(
        "--no-nodemo-check",
        dest="nodemo_check",
        action="store_false",
        help="skip the install without demo data",
    )
    test.set_defaults(func=cmd_test)
    script = commands.add_parser("script", help="run a bench/ script on a fresh database")
    script.add_argument("path")
    script.add_argument("script_args", nargs=argparse.REMAINDER)
    script.set_defaults(func=cmd_script)
    load = commands.add_parser("load", help="the load test of bench/load (Locust, Odoo in prefork mode)")
    load.add_argument("script_args", nargs=argparse.REMAINDER)
    load.set_defaults(func=cmd_load)
    peers = commands.add_parser("bench-peers", help="bench/peers: OCA credit control and contract side by side")
    peers.add_argument("script_args", nargs=argparse.REMAINDER)
    peers.set_defaults(func=cmd_bench_peers)
    pot = commands.add_parser("pot", help="regenerate the translation template")
    pot.set_defaults(func=cmd_pot)
    stop_db = commands.add_parser("stop-db", help="stop the private PostgreSQL cluster")
    stop_db.set_defaults(func=cmd_stop_db)
    args, unknown = parser.parse_known_args()
    if unknown and args.command not in ("load", "bench-peers"):
        parser.error(f"unrecognized arguments: {' '.join(unknown)}")
    if args.command in ("load", "bench-peers"):
        # everything after "load" is the load test's own options
        args.script_args = unknown + args.script_args
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
