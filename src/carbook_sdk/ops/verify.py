"""Verification: every element of the schema by name, and the Supabase-style lints."""

from __future__ import annotations

from .connection import Model
from .lint import INTENDED, LINTS, Finding, LintReport
from .migrations import Migrations

__all__ = ["Check", "Verification", "VerifyReport"]


class Check(Model):
    """One verified element of the schema."""

    name: str
    ok: bool
    detail: str


class VerifyReport(Model):
    checks: tuple[Check, ...]

    @property
    def ok(self) -> bool:
        return all(c.ok for c in self.checks)

    @property
    def failed(self) -> tuple[Check, ...]:
        return tuple(c for c in self.checks if not c.ok)


class Verification(Migrations):
    """Verify the structure and lint it."""

    def verify(self) -> VerifyReport:
        """Check every element of the atomic-booking structure, each by name.

        Runs ``supabase/tests/verify_database_structure.sql`` in report mode, plus
        one check per migration file that it is recorded as applied.

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        sql = (self.project_dir / "tests" / "verify_database_structure.sql").read_text("utf-8")
        files = self.migrations()
        # One transaction: the script's temporary function is created, called and dropped
        # on the one server connection a transaction pooler lends for it.
        with self.connect() as conn, conn.transaction():
            applied = self._applied(conn)
            history = [
                Check(
                    name=f"migration:{m.version}_{m.name}",
                    ok=m.version in applied,
                    detail="applied" if m.version in applied else "not applied",
                )
                for m in files
            ]
            missing = [
                s
                for s in ("auth.users", "storage.buckets", "storage.objects")
                if conn.execute("select to_regclass(%s)", (s,)).fetchone() == (None,)
            ]
            if missing:
                return VerifyReport(
                    checks=(
                        *history,
                        Check(name="platform", ok=False, detail="missing " + ", ".join(missing)),
                    )
                )
            conn.execute("select set_config('carbook.verify_mode', 'report', true)")
            conn.execute(sql)
            rows = conn.execute("select name, ok, detail from pg_temp.carbook_checks()").fetchall()
            conn.execute("drop function pg_temp.carbook_checks()")
        return VerifyReport(
            checks=(*history, *(Check(name=n, ok=bool(ok), detail=d or "") for n, ok, d in rows))
        )

    def lint(self, exposed_schemas: tuple[str, ...] = ("public",)) -> LintReport:
        """Run the Supabase-style security and performance lints on the live schema.

        ``exposed_schemas`` are the schemas the API serves (``[api].schemas``); they are
        set as ``pgrst.db_schemas`` for the lints' one transaction, as splinter expects
        (never for the session: behind a pooler it would leak onto other clients).

        Raises:
            CarbookConnectionError: the database cannot be reached.
        """
        findings: list[Finding] = []
        with self.connect() as conn, conn.transaction():
            conn.execute("select set_config('pgrst.db_schemas', %s, true)", (",".join(exposed_schemas),))
            for lint in LINTS:
                for obj, detail in conn.execute(lint.sql).fetchall():
                    findings.append(
                        Finding(
                            lint=lint.name,
                            level=lint.level,
                            title=lint.title,
                            object=obj,
                            detail=detail,
                            intended=INTENDED.get((lint.name, obj)),
                        )
                    )
        return LintReport(exposed_schemas=exposed_schemas, findings=tuple(findings))
