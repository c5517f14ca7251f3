"""``anchormix study``: invite raters, serve the study, follow its progress, export answers,
rehearse the analysis on simulated raters, size the study by simulation (``power``).

Run from the project (or any folder below it) with no other arguments, each command acts
on the study raters were last invited to, or before any invitation on the latest study the
pipeline built (``--study VERSION`` picks another), and on the database of the
``study_database`` global (``ANCHORMIX_STUDY_DATABASE`` overrides it, e.g. with a
PostgreSQL URL). ``serve`` serves every rater the study they were invited to.
"""

from __future__ import annotations

import argparse
import logging
import os
import sys
import warnings
from dataclasses import dataclass
from pathlib import Path

import pandas as pd
import sqlalchemy as sa

from anchormix_kedro.errors import CliError


@dataclass(frozen=True)
class StudyProject:
    """Where a project keeps its studies and database, and its ``study`` parameters."""

    root: Path
    studies: Path
    database_url: str
    params: dict
    simulated_database_url: str = ""
    simulated_codes: Path | None = None
    codebook: tuple[str, ...] = ()
    study_kit: dict | None = None  # the study material's parameters
    reporting: Path | None = None  # <data_root>/08_reporting


def find_project(start: Path | None = None) -> Path:
    """The Kedro project holding ``start`` (default: the working directory)."""
    here = (start or Path.cwd()).resolve()
    for folder in (here, *here.parents):
        pyproject = folder / "pyproject.toml"
        if (
            (folder / "conf" / "base").is_dir()
            and pyproject.is_file()
            and ("[tool.kedro]" in pyproject.read_text(encoding="utf-8"))
        ):
            return folder
    raise CliError(
        f"no Kedro project in {here} or above it: run `anchormix study` from the project"
    )


def _absolute_sqlite(url: str, root: Path) -> str:
    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite" and parsed.database not in (None, "", ":memory:"):
        path = Path(parsed.database)
        return str(parsed.set(database=str(path if path.is_absolute() else root / path)))
    return url


def load_project(env: str | None = None, start: Path | None = None) -> StudyProject:
    """The project's study settings, read through Kedro's configuration loader."""
    from anchormix_kedro.config import UnknownEnvironment, check_environment, project_config

    root = find_project(start)
    try:
        check_environment(root / "conf", env)
    except UnknownEnvironment as exc:
        raise CliError(str(exc)) from None
    # Kedro's loader warns about OmegaConf's renamed resolver call on every load: not ours.
    warnings.filterwarnings("ignore", message="register_new_resolver", category=UserWarning)
    loader = project_config(root / "conf", env)
    catalog = loader["catalog"]

    def inside(path: str) -> Path:
        return Path(path) if Path(path).is_absolute() else root / path

    return StudyProject(
        root=root,
        studies=inside(str(catalog["rating_study"]["path"])),
        database_url=_absolute_sqlite(str(loader["globals"]["study_database"]), root),
        params=dict(loader["parameters"]["study"]),
        simulated_database_url=_absolute_sqlite(
            str(loader["globals"]["study_simulated_database"]), root),
        simulated_codes=inside(str(catalog["study_codes_simulated"]["path"])),
        codebook=tuple(e["code"] for e in loader["parameters"].get("study_codebook") or []),
        study_kit=dict(loader["parameters"].get("study_kit") or {}),
        reporting=inside(str(loader["globals"].get("data_root") or "data")) / "08_reporting",
    )  # fmt: skip


def _open(args, simulated: bool = False):
    """``(project, study, store)``: the study named by ``--study``, else the one raters
    were last invited to, else the latest built; and the project's study database (or,
    ``simulated``, the simulated one)."""
    from anchormix_kedro.study.material import StudyNotFoundError, load_study, study_versions
    from anchormix_kedro.study.storage import StudyStore

    project = load_project(args.env)
    try:
        store = StudyStore.open(project.simulated_database_url if simulated
                                else project.database_url)  # fmt: skip
    except sa.exc.SQLAlchemyError as error:
        raise CliError(f"the study database cannot be opened: {error.__class__.__name__}: "
                       f"{str(error).splitlines()[0]}") from None  # fmt: skip
    built = study_versions(project.studies)
    running = [v for v in store.versions_with_raters() if v in built]
    try:
        study = load_study(project.studies, args.study or (running[-1] if running else None))
    except StudyNotFoundError as error:
        raise CliError(str(error)) from None
    if not args.study and built and study.version != built[-1]:
        sys.stderr.write(
            f"Study {study.version}, which raters were invited to; a newer one "
            f"was built since ({built[-1]}): --study picks it\n"
        )
    store.register_study(study.version, study.study_id, len(study.scenario_ids))
    return project, study, store


def _base_url(project: StudyProject, args) -> str:
    if args.base_url:
        return args.base_url.rstrip("/")
    public = project.params.get("public_url")
    if public:
        return str(public).rstrip("/")
    return f"http://{project.params['host']}:{project.params['port']}"


def study_design(study, params: dict):
    """Each new rater's list, drawn by the ``study.design`` parameters (balanced over
    scenarios, systems and positions; catch trials)."""
    from anchormix_kedro.study.design import assign_rater

    design = dict(params.get("design") or {})
    per_rater = design.get("per_rater")

    def draw(rater_index: int, counts: dict[str, int]):
        return assign_rater(study.key, counts, rater_index, per_rater, int(design.get("seed", 0)),
                            catch_trials=bool(design.get("catch_trials", True)))  # fmt: skip

    return draw


def invite(args) -> int:
    if not args.organiser and not 1 <= args.n <= 10_000:
        raise CliError(f"--n must be at least 1 (and at most 10000), got {args.n}")
    project, study, store = _open(args)
    base = _base_url(project, args)
    if args.organiser:
        sys.stdout.write(store.new_organiser_token() + "\n")
        sys.stderr.write("An organiser token for /organiser/status: keep it; it is not shown "
                         "again.\n")  # fmt: skip
        return 0
    try:
        invited = store.invite(study.version, args.n, study_design(study, project.params))
    except ValueError as error:
        raise CliError(str(error)) from None
    lines = [f"{base}/r/{token}/" for _label, token in invited]
    if args.output:
        if args.output.exists():
            raise CliError(f"{args.output} exists already: choose another --output")
        args.output.write_text(
            "".join(f"{label}\t{line}\n" for (label, _t), line in zip(invited, lines, strict=True))
        )
        args.output.chmod(0o600)
    sys.stdout.write("".join(line + "\n" for line in lines))
    sys.stderr.write(
        f"Invited {len(invited)} raters ({invited[0][0]} to {invited[-1][0]}) to study "
        f"{study.version}: send each one their link. Only the links hold the tokens: keep "
        "them, they cannot be shown again.\n"
    )
    return 0


def serve(args) -> int:
    import uvicorn

    from anchormix_kedro.study.server import create_app

    project, study, store = _open(args)
    host = args.host or str(project.params["host"])
    port = int(args.port or project.params["port"])
    from anchormix_kedro.study.material import StudyShelf

    app = create_app(store, study, project.params, StudyShelf(project.studies))
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    sys.stderr.write(
        f"Serving study {study.version} ({len(study.scenario_ids)} scenarios) on "
        f"http://{host}:{port}/ from {project.database_url.split('@')[-1]}; Ctrl-C stops.\n"
    )
    # uvicorn's own access log would print each rater's token: ours redacts it.
    uvicorn.run(app, host=host, port=port, access_log=False, log_level="warning")
    return 0


def status(args) -> int:
    from anchormix_kedro.study.answers import progress
    from anchormix_kedro.study.quality import quality_inputs, rater_quality

    project, study, store = _open(args)
    table = progress(store, study.version, len(study.scenario_ids))
    quality = rater_quality(quality_inputs(store, study.version), study.version,
                            project.params.get("exclusion"))  # fmt: skip
    if len(table):
        table = table.merge(quality.rename(columns={"catch_effectiveness": "catch",
                                                    "repeat_mean_abs_diff": "repeat_diff"}),
                            on="rater", how="left")  # fmt: skip
    lists = sorted(set(table["of"])) if len(table) else []
    each = (f"{lists[0]} items each" if len(lists) == 1 else
            f"{lists[0]} to {lists[-1]} items each" if lists else "")  # fmt: skip
    sys.stdout.write(f"Study {study.version} ({study.study_id}): {len(study.scenario_ids)} "
                     f"scenarios; {len(table)} raters invited{', ' + each if each else ''}\n")  # fmt: skip
    if table.empty:
        sys.stdout.write("No rater is invited yet: anchormix study invite --n 20\n")
        return 0

    def when(stamp) -> str:
        return "" if pd.isna(stamp) else f"{stamp:%Y-%m-%d %H:%M}"

    shown = table.assign(
        first_saved=table["first_saved"].map(when),
        last_saved=table["last_saved"].map(when),
        catch=table["catch"].map(lambda v: "" if pd.isna(v) else f"{v:g}"),
        repeat_diff=table["repeat_diff"].map(lambda v: "" if pd.isna(v) else f"{v:.2f}"),
        excluded=table["excluded"].map({True: "yes", False: ""}),
        headphone_correct=table["headphone_correct"].map(
            lambda v: "" if pd.isna(v) else f"{int(v)} of 3"
        ),
    ).drop(columns="reason")
    sys.stdout.write(shown.to_string(index=False) + "\n")
    for row in table[table["excluded"]].itertuples(index=False):
        sys.stdout.write(f"{row.rater} is excluded by study.exclusion: {row.reason}\n")
    return 0


def _reset_database(url: str) -> None:
    """Empty the simulated database: a SQLite file is removed, a server's tables dropped."""
    from anchormix_kedro.study.schema import metadata

    parsed = sa.engine.make_url(url)
    if parsed.get_backend_name() == "sqlite":
        for suffix in ("", "-wal", "-shm"):
            Path(f"{parsed.database}{suffix}").unlink(missing_ok=True)
        return
    engine = sa.create_engine(url)
    with engine.begin() as conn:
        metadata.drop_all(conn)
        conn.execute(sa.text("DROP TABLE IF EXISTS alembic_version"))
    engine.dispose()


def simulate(args) -> int:
    """Fill the simulated study database with simulated raters (docs/study.md)."""
    from anchormix_kedro.study.material import StudyNotFoundError, load_study
    from anchormix_kedro.study.simulation import RaterModel, parse_effects, write_simulated_study
    from anchormix_kedro.study.storage import StudyStore

    project = load_project(args.env)
    if _same_database(project.simulated_database_url, project.database_url):
        raise CliError("the simulated study database is the real one: give "
                       "ANCHORMIX_SIMULATED_STUDY_DATABASE another URL")  # fmt: skip
    if not 2 <= args.raters <= 10_000:
        raise CliError(f"--raters must be at least 2 (and at most 10000), got {args.raters}")
    try:
        study = load_study(project.studies, args.study)
        key = study.key[study.key["system"] != "catch"]
        effects = parse_effects(args.effect or [], sorted(key["system"].unique()),
                                sorted(key["genre"].dropna().unique()) if "genre" in key else [])  # fmt: skip
        model = RaterModel.from_params(project.params.get("simulation"))
    except (StudyNotFoundError, ValueError) as error:
        raise CliError(str(error)) from None
    store = StudyStore.open(project.simulated_database_url)
    if store.versions_with_raters():
        if not args.replace:
            store.close()
            raise CliError(f"the simulated study database ({_shown(project.simulated_database_url)}) "
                           "holds simulated raters already: --replace draws new ones")  # fmt: skip
        store.close()
        _reset_database(project.simulated_database_url)
        store = StudyStore.open(project.simulated_database_url)
    store.register_study(study.version, study.study_id, len(study.scenario_ids))
    codebook = list(project.codebook) or None
    simulated = write_simulated_study(store, study, study_design(study, project.params),
                                      args.raters, model, effects, args.seed, codebook)  # fmt: skip
    store.close()
    written = _write_simulated_codes(project, study, simulated)
    careless = int(simulated.raters["careless"].sum())
    planted = ", ".join(f"{s}{'@' + g if g else ''} {p:+g}" for (s, g), p in effects.items())
    sys.stderr.write(
        f"Simulated {args.raters} raters ({careless} careless) on study {study.version} into "
        f"{_shown(project.simulated_database_url)}; planted: {planted or 'nothing'}; "
        f"{len(written)} simulated coders' files in {project.simulated_codes}. The real "
        "study database is untouched. Analyse it with:\n"
        "  kedro run --pipeline=correlation --params study.ratings=simulated\n"
    )
    return 0


def _same_database(first: str, second: str) -> bool:
    """Whether two URLs name one database (however the URLs are written)."""
    a, b = sa.engine.make_url(first), sa.engine.make_url(second)
    return (a.get_backend_name(), a.host or "", a.port, a.database) == (
        b.get_backend_name(), b.host or "", b.port, b.database)  # fmt: skip


def _shown(url: str) -> str:
    return sa.engine.make_url(url).render_as_string(hide_password=True)


def _write_simulated_codes(project: StudyProject, study, simulated) -> list[Path]:
    """Two simulated coders' files of the simulated comments: the planted codes, the
    second coder differing on about one comment in ten."""
    from anchormix_kedro.study.simulation import coder_files_from_planted

    folder = project.simulated_codes
    folder.mkdir(parents=True, exist_ok=True)
    for old in folder.glob("*.csv"):
        old.unlink()
    paths = []
    for coder, frame in coder_files_from_planted(simulated.answers, study.key).items():
        path = folder / f"{coder}.csv"
        frame.to_csv(path, index=False)
        paths.append(path)
    return paths


def export(args) -> int:
    from anchormix_kedro.study.answers import export_tables

    _project, study, store = _open(args)
    try:
        paths = export_tables(store, study, args.output)
    except FileExistsError as error:
        raise CliError(str(error)) from None
    sys.stderr.write("Wrote " + ", ".join(str(p) for p in paths) + "\n")
    return 0


def power(args) -> int:
    """Power of the study's design, or its false-positive rate (``--check``), by simulation."""
    from anchormix_kedro.study.power import PowerSettings, power_report

    try:
        settings = PowerSettings(args.check, tuple(args.raters), tuple(args.per_rater or ()),
                                 args.examples, args.effect, args.simulations, args.workers)  # fmt: skip
    except ValueError as error:
        raise CliError(str(error)) from None
    project = load_project(args.env)
    name = "study_power_check.csv" if args.check else "study_power.csv"
    sys.stdout.write(power_report({"study": project.params, "study_kit": project.study_kit},
                                  settings, args.output or project.reporting / name))  # fmt: skip
    return 0


def add_commands(commands) -> None:
    """The ``study`` command and its subcommands, on the ``anchormix`` parser."""
    study = commands.add_parser("study", help="the listening study: invite, serve, status, "
                                "export, simulate, power", description=__doc__.split("\n\n")[0])  # fmt: skip
    study.set_defaults(handler=run)
    actions = study.add_subparsers(dest="study_command", required=True, metavar="ACTION")
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--study", metavar="VERSION", help="a built study (default: the latest)")
    common.add_argument("--env", help="Kedro configuration environment (default: local)")
    inviting = actions.add_parser("invite", parents=[common], help="print one link per new rater")
    inviting.add_argument("--n", type=int, default=1, help="how many raters (default: 1)")
    inviting.add_argument("--base-url", help="the links' base (default: study.public_url)")
    inviting.add_argument("--output", type=Path, help="also write label and link to FILE (0600)")
    inviting.add_argument("--organiser", action="store_true",
                          help="print a new organiser token instead")  # fmt: skip
    inviting.set_defaults(study_handler=invite)
    serving = actions.add_parser("serve", parents=[common], help="serve the study")
    serving.add_argument("--host", help="bind address (default: study.host, 127.0.0.1)")
    serving.add_argument("--port", type=int, help="port (default: study.port, 8000)")
    serving.set_defaults(study_handler=serve)
    actions.add_parser("status", parents=[common], help="progress per rater").set_defaults(
        study_handler=status
    )
    exporting = actions.add_parser("export", parents=[common], help="the answers as tidy CSV files")
    exporting.add_argument("--output", type=Path, required=True, help="the ratings' CSV file")
    exporting.set_defaults(study_handler=export)
    simulating = actions.add_parser(
        "simulate", parents=[common],
        help="simulated raters in a database of their own, to rehearse the analysis")  # fmt: skip
    simulating.add_argument("--raters", type=int, required=True, help="how many raters")
    simulating.add_argument("--effect", action="append", metavar="SYSTEM[@GENRE]=POINTS",
                            help="add POINTS to SYSTEM's ratings (in GENRE only); repeatable "
                                 "(default: no system differs)")  # fmt: skip
    simulating.add_argument(
        "--seed", type=int, default=0, help="the simulation's seed (default: 0)"
    )
    simulating.add_argument("--replace", action="store_true",
                            help="draw new simulated raters over the simulated ones")  # fmt: skip
    simulating.set_defaults(study_handler=simulate)
    powering = actions.add_parser("power", help="how many raters: the analysis run on "
                                  "simulated studies", description=power.__doc__)  # fmt: skip
    powering.add_argument("--env", help="Kedro configuration environment (default: local)")
    powering.add_argument("--check", action="store_true",
                          help="false-positive rate and power at the configured design")  # fmt: skip
    powering.add_argument("--raters", type=int, nargs="+", default=[16, 20, 24, 30])
    powering.add_argument("--per-rater", type=int, nargs="+", help="study.design.per_rater")
    powering.add_argument("--examples", type=int, help="default: study_kit.n_examples")
    powering.add_argument("--effect", type=float, default=0.5, help="planted points (0.5)")
    powering.add_argument("--simulations", type=int, default=60, help="per row (default: 60)")
    powering.add_argument("--workers", type=int, default=os.cpu_count() or 1, help="processes "
                          "at once (default: the cores)")  # fmt: skip
    powering.add_argument("--output", type=Path, help="the table's CSV (default: data/"
                          "08_reporting/study_power.csv or study_power_check.csv)")  # fmt: skip
    powering.set_defaults(study_handler=power)


def run(args) -> int:
    return args.study_handler(args)
