"""Queries of partnering workspaces: workspaces, members, notes and tasks."""

from __future__ import annotations

from sqlalchemy import Select, delete, func, select
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import aliased
from sqlalchemy.sql.elements import ColumnElement

from services.collaboration.models import MemberRow, NoteRow, TaskRow, WorkspaceRow


async def workspace(session: AsyncSession, eco: str, workspace_id: str) -> WorkspaceRow | None:
    row = await session.get(WorkspaceRow, workspace_id)
    return row if row is not None and row.eco == eco else None


async def workspace_by_id(session: AsyncSession, workspace_id: str) -> WorkspaceRow | None:
    """A workspace whatever its ecosystem (its members may be of an allied one)."""
    return await session.get(WorkspaceRow, workspace_id)


def _member_of(eco: str) -> ColumnElement[bool]:
    """The member row is of ``eco`` (its own ecosystem, else the workspace's)."""
    return func.coalesce(MemberRow.eco, WorkspaceRow.eco) == eco


async def by_introduction(session: AsyncSession, eco: str, intro: str) -> WorkspaceRow | None:
    query = select(WorkspaceRow).where(WorkspaceRow.eco == eco, WorkspaceRow.introduction == intro)
    return (await session.scalars(query)).first()


async def member(session: AsyncSession, workspace_id: str, person: str) -> MemberRow | None:
    return await session.get(MemberRow, (workspace_id, person))


async def members(session: AsyncSession, workspace_ids: list[str]) -> list[MemberRow]:
    if not workspace_ids:
        return []
    query = (
        select(MemberRow)
        .where(MemberRow.workspace.in_(workspace_ids))
        .order_by(MemberRow.joined_at, MemberRow.person)
    )
    return list((await session.scalars(query)).all())


async def remove_member(session: AsyncSession, workspace_id: str, person: str) -> None:
    await session.execute(
        delete(MemberRow).where(MemberRow.workspace == workspace_id, MemberRow.person == person)
    )


async def workspaces_of(session: AsyncSession, eco: str, person: str) -> list[WorkspaceRow]:
    query = (
        select(WorkspaceRow)
        .join(MemberRow, MemberRow.workspace == WorkspaceRow.id)
        .where(_member_of(eco), MemberRow.person == person)
        .order_by(WorkspaceRow.created_at.desc(), WorkspaceRow.id)
    )
    return list((await session.scalars(query)).all())


def workspace_ids_query(eco: str, person: str) -> Select[str]:
    """The query of the ids of the workspaces ``person`` is a member of."""
    return (
        select(WorkspaceRow.id)
        .join(MemberRow, MemberRow.workspace == WorkspaceRow.id)
        .where(WorkspaceRow.eco == eco, MemberRow.person == person)
    )


async def workspace_ids_of(session: AsyncSession, eco: str, person: str) -> list[str]:
    return list((await session.scalars(workspace_ids_query(eco, person))).all())


async def note(session: AsyncSession, workspace_id: str, note_id: str) -> NoteRow | None:
    row = await session.get(NoteRow, note_id)
    return row if row is not None and row.workspace == workspace_id else None


async def notes(session: AsyncSession, workspace_id: str) -> list[NoteRow]:
    query = (
        select(NoteRow)
        .where(NoteRow.workspace == workspace_id)
        .order_by(NoteRow.created_at.desc(), NoteRow.id)
    )
    return list((await session.scalars(query)).all())


async def task(session: AsyncSession, workspace_id: str, task_id: str) -> TaskRow | None:
    row = await session.get(TaskRow, task_id)
    return row if row is not None and row.workspace == workspace_id else None


async def tasks(session: AsyncSession, workspace_id: str, status: str | None) -> list[TaskRow]:
    query = select(TaskRow).where(TaskRow.workspace == workspace_id)
    if status is not None:
        query = query.where(TaskRow.status == status)
    return list((await session.scalars(query.order_by(TaskRow.created_at, TaskRow.id))).all())


async def by_direct(session: AsyncSession, eco: str, key: str) -> WorkspaceRow | None:
    query = select(WorkspaceRow).where(WorkspaceRow.eco == eco, WorkspaceRow.direct == key)
    return (await session.scalars(query)).first()


async def introduced(session: AsyncSession, eco: str, a: str, b: str) -> bool:
    """Whether ``a`` and ``b`` are both members of a workspace an accepted introduction opened
    (collaboration's record of two people being connected)."""
    first, second = aliased(MemberRow), aliased(MemberRow)
    query = (
        select(WorkspaceRow.id)
        .join(first, first.workspace == WorkspaceRow.id)
        .join(second, second.workspace == WorkspaceRow.id)
        .where(
            WorkspaceRow.eco == eco,
            WorkspaceRow.introduction.is_not(None),
            first.person == a,
            second.person == b,
        )
        .limit(1)
    )
    return (await session.scalars(query)).first() is not None
