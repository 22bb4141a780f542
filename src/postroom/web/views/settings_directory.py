"""Settings → Teams (members, and each member's cap of open conversations), and Customers with their domains.

The same services as ``/api/v1/teams`` and ``/api/v1/customers`` (``helpdesk.teams``,
``helpdesk.customers``): the views read the form, call them, and put what they refuse next to the field
it concerns.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Annotated, Any

from fastapi import APIRouter, Form, Request, Response
from fastapi.responses import RedirectResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, selectinload

from postroom.api.pagination import Order, PageRequest, keyset_page
from postroom.errors import Conflict, InvalidSetting, NotFound
from postroom.helpdesk.customers import CustomerInput, CustomerService, conversation_brief, normalize_domain
from postroom.helpdesk.teams import TeamService
from postroom.service import Service
from postroom.store.models import Contact, Conversation, Customer, CustomerDomain, Team, TeamMember, User
from postroom.web.deps import AdminUserDep, ServiceDep
from postroom.web.session import WebUser
from postroom.web.templating import render
from postroom.web.views.settings_people import MAX_NAME, PAGE_SIZE, not_found, sentence

router = APIRouter()

teams = TeamService()
customers = CustomerService()

# Users offered in a team's "Add a member" list: more would not be usable in a <select>.
MEMBER_PICKER_LIMIT = 500
# Contacts and conversations listed on a customer's page; the counts beside them say how many there are.
DETAIL_LIMIT = 20


# -- teams ----------------------------------------------------------------------------------------


def _teams_context(session: Session, cursor: str | None) -> dict[str, Any]:
    rows, next_cursor = keyset_page(session, teams.query(), [Order(Team.id)], PageRequest(cursor, PAGE_SIZE))
    return {
        "nav": "settings",
        "section": "teams",
        "teams": teams.views(session, rows),
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "form": {"name": ""},
        "errors": {},
        "notice": None,
    }


@router.get("/settings/teams")
def teams_page(
    request: Request, service: ServiceDep, user: AdminUserDep, cursor: str | None = None, deleted: int = 0
) -> Response:
    with service.db.read() as session:
        try:
            context = _teams_context(session, cursor)
        except InvalidSetting:
            context = _teams_context(session, None)
    if deleted:
        context["notice"] = "The team is deleted. Its conversations stay, in no team's queue."
    return render(request, "settings/teams.html", context, user=user)


@router.post("/settings/teams")
def create_team(
    request: Request, service: ServiceDep, user: AdminUserDep, name: Annotated[str, Form()] = ""
) -> Response:
    error = _team_name_problem(name)
    if error is None:
        try:
            with service.db.write() as session:
                team_id = teams.create(session, name).id
        except InvalidSetting as problem:
            error = sentence(problem.reason)
        except Conflict as problem:
            error = sentence(str(problem))
    if error is not None:
        with service.db.read() as session:
            context = _teams_context(session, None)
        context.update(form={"name": name}, errors={"name": error})
        return render(request, "settings/teams.html", context, user=user, status_code=422)
    return RedirectResponse(f"/settings/teams/{team_id}?created=1", status_code=303)


def _team_name_problem(name: str) -> str | None:
    if not name.strip():
        return "Give the team a name."
    if len(name.strip()) > MAX_NAME:
        return f"Use at most {MAX_NAME} characters."
    return None


@dataclass
class TeamForm:
    name: str | None = None
    errors: dict[str, str] = field(default_factory=dict)


def _render_team(
    request: Request,
    service: Service,
    user: WebUser,
    team_id: int,
    form: TeamForm | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    with service.db.read() as session:
        team = session.get(Team, team_id)
        if team is None:
            return not_found(request, user, f"no team {team_id}")
        view = teams.views(session, [team])[0]
        member_ids = [m["id"] for m in view["members"]]
        # The members' caps and states, in one query (the service's view has names and addresses only).
        details = {u.id: u for u in session.scalars(select(User).where(User.id.in_(member_ids)))} if member_ids else {}
        candidates = session.execute(
            select(User.id, User.name, User.email)
            .where(
                User.enabled.is_(True), User.id.not_in(select(TeamMember.user_id).where(TeamMember.team_id == team_id))
            )
            .order_by(User.name, User.id)
            .limit(MEMBER_PICKER_LIMIT)
        ).all()
    form = form or TeamForm()
    context = {
        "nav": "settings",
        "section": "teams",
        "team": view,
        "members": [{**m, "user": details.get(m["id"])} for m in view["members"]],
        "candidates": candidates,
        "name": view["name"] if form.name is None else form.name,
        "errors": form.errors,
        "notice": notice,
    }
    return render(request, "settings/teams_edit.html", context, user=user, status_code=status_code)


_TEAM_NOTICES = {
    "created": "The team is created. Add its members below.",
    "renamed": "The team is renamed.",
    "added": "The member is added.",
    "removed": "The member is removed from the team.",
}


@router.get("/settings/teams/{team_id:int}")
def team_page(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    team_id: int,
    created: int = 0,
    renamed: int = 0,
    added: int = 0,
    removed: int = 0,
) -> Response:
    flags = {"created": created, "renamed": renamed, "added": added, "removed": removed}
    notice = next((_TEAM_NOTICES[key] for key, on in flags.items() if on), None)
    return _render_team(request, service, user, team_id, notice=notice)


@router.post("/settings/teams/{team_id:int}")
def rename_team(
    request: Request, service: ServiceDep, user: AdminUserDep, team_id: int, name: Annotated[str, Form()] = ""
) -> Response:
    error = _team_name_problem(name)
    if error is None:
        try:
            with service.db.write() as session:
                teams.rename(session, team_id, name)
        except NotFound as problem:
            return not_found(request, user, str(problem))
        except InvalidSetting as problem:
            error = sentence(problem.reason)
        except Conflict as problem:
            error = sentence(str(problem))
    if error is not None:
        return _render_team(request, service, user, team_id, TeamForm(name, {"name": error}), status_code=422)
    return RedirectResponse(f"/settings/teams/{team_id}?renamed=1", status_code=303)


@router.post("/settings/teams/{team_id:int}/members")
def add_member(
    request: Request, service: ServiceDep, user: AdminUserDep, team_id: int, user_id: Annotated[str, Form()] = ""
) -> Response:
    if not user_id.isdigit():
        form = TeamForm(errors={"user_id": "Choose a person from the list."})
        return _render_team(request, service, user, team_id, form, status_code=422)
    try:
        with service.db.write() as session:
            teams.add_member(session, team_id, int(user_id))
    except NotFound as problem:
        return not_found(request, user, str(problem))
    except InvalidSetting as problem:
        form = TeamForm(errors={"user_id": sentence(problem.reason)})
        return _render_team(request, service, user, team_id, form, status_code=422)
    return RedirectResponse(f"/settings/teams/{team_id}?added=1", status_code=303)


@router.post("/settings/teams/{team_id:int}/members/{user_id:int}/remove")
def remove_member(request: Request, service: ServiceDep, user: AdminUserDep, team_id: int, user_id: int) -> Response:
    try:
        with service.db.write() as session:
            teams.remove_member(session, team_id, user_id)
    except NotFound as problem:
        return not_found(request, user, str(problem))
    return RedirectResponse(f"/settings/teams/{team_id}?removed=1", status_code=303)


@router.post("/settings/teams/{team_id:int}/delete")
def delete_team(request: Request, service: ServiceDep, user: AdminUserDep, team_id: int) -> Response:
    try:
        with service.db.write() as session:
            teams.delete(session, team_id)
    except NotFound as problem:
        return not_found(request, user, str(problem))
    return RedirectResponse("/settings/teams?deleted=1", status_code=303)


# -- customers ------------------------------------------------------------------------------------


_CUSTOMER_ORDER = (Order(Customer.name), Order(Customer.id))


def _customers_context(session: Session, q: str, cursor: str | None) -> dict[str, Any]:
    query = select(Customer).options(selectinload(Customer.domains))
    needle = q.strip().lower()
    if needle:
        # The API's search: part of the name or of a domain (customers are hundreds, not millions).
        query = query.where(
            Customer.name.icontains(needle, autoescape=True)
            | Customer.id.in_(
                select(CustomerDomain.customer_id).where(CustomerDomain.domain.contains(needle, autoescape=True))
            )
        )
    rows, next_cursor = keyset_page(session, query, _CUSTOMER_ORDER, PageRequest(cursor, PAGE_SIZE))
    ids = [c.id for c in rows]
    contacts, conversations = _counts(session, ids)
    return {
        "nav": "settings",
        "section": "customers",
        "customers": [
            {**customers.view(c), "contacts": contacts.get(c.id, 0), "conversations": conversations.get(c.id, 0)}
            for c in rows
        ],
        "q": q,
        "next_cursor": next_cursor,
        "first_page": cursor is None,
        "notice": None,
    }


def _counts(session: Session, ids: list[int]) -> tuple[dict[int, int], dict[int, int]]:
    """Contacts and conversations per customer of a page: two grouped queries, not two per customer."""
    if not ids:
        return {}, {}
    contacts = session.execute(
        select(Contact.customer_id, func.count()).where(Contact.customer_id.in_(ids)).group_by(Contact.customer_id)
    )
    conversations = session.execute(
        select(Conversation.customer_id, func.count())
        .where(Conversation.customer_id.in_(ids))
        .group_by(Conversation.customer_id)
    )
    return {k: n for k, n in contacts if k is not None}, {k: n for k, n in conversations if k is not None}


def _related(session: Session, customer_id: int) -> dict[str, Any]:
    """A customer's first contacts and newest conversations, each list capped.

    Newest by creation (id), not by last activity as the API's detail view orders them: the customer's
    index then yields the page directly, where ordering by activity made SQLite walk the activity
    index of every conversation (a third of a second at 100,000 conversations).
    """
    contacts = session.execute(
        select(Contact.id, Contact.name, Contact.email)
        .where(Contact.customer_id == customer_id)
        .order_by(Contact.id)
        .limit(DETAIL_LIMIT)
    ).all()
    conversations = session.scalars(
        select(Conversation)
        .where(Conversation.customer_id == customer_id)
        .order_by(Conversation.id.desc())
        .limit(DETAIL_LIMIT)
    ).all()
    return {
        "contacts": [{"id": i, "name": name, "email": email} for i, name, email in contacts],
        "conversations": [conversation_brief(c) for c in conversations],
    }


@router.get("/settings/customers")
def customers_page(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    q: str = "",
    cursor: str | None = None,
    deleted: int = 0,
) -> Response:
    with service.db.read() as session:
        try:
            context = _customers_context(session, q, cursor)
        except InvalidSetting:
            context = _customers_context(session, q, None)
    if deleted:
        context["notice"] = "The customer is deleted. Its contacts and conversations stay, without a customer."
    return render(request, "settings/customers.html", context, user=user)


@dataclass
class CustomerForm:
    name: str = ""
    notes: str = ""
    domains: list[str] = field(default_factory=list)
    # Errors by field; a domain's error is keyed "domains-<index>" so it shows beside its own input.
    errors: dict[str, str] = field(default_factory=dict)


def _render_customer(
    request: Request,
    service: Service,
    user: WebUser,
    customer_id: int | None,
    form: CustomerForm | None = None,
    notice: str | None = None,
    status_code: int = 200,
) -> Response:
    detail: dict[str, Any] | None = None
    counts: tuple[int, int] = (0, 0)
    if customer_id is not None:
        with service.db.read() as session:
            try:
                customer = customers.get(session, customer_id)
            except NotFound as problem:
                return not_found(request, user, str(problem))
            detail = {**customers.view(customer), **_related(session, customer_id)}
            contacts, conversations = _counts(session, [customer_id])
            counts = (contacts.get(customer_id, 0), conversations.get(customer_id, 0))
        if form is None:
            form = CustomerForm(detail["name"], detail["notes"], list(detail["domains"]))
    form = form or CustomerForm()
    # Always one empty input at the end: a domain can be added without script.
    domains = [*form.domains, ""] if not form.domains or form.domains[-1] else form.domains
    context = {
        "nav": "settings",
        "section": "customers",
        "customer": detail,
        "form": form,
        "domains": domains,
        "errors": form.errors,
        "notice": notice,
        "contact_count": counts[0],
        "conversation_count": counts[1],
    }
    return render(request, "settings/customers_edit.html", context, user=user, status_code=status_code)


def _customer_form(name: str, notes: str, domains: list[str]) -> CustomerForm:
    """The form as posted, with what can be said of each field before the service is asked."""
    form = CustomerForm(name, notes, [d.strip() for d in domains])
    if not name.strip():
        form.errors["name"] = "Give the customer a name."
    elif len(name.strip()) > MAX_NAME:
        form.errors["name"] = f"Use at most {MAX_NAME} characters."
    # Each domain on its own, so that a refusal is shown beside the input that holds it.
    for index, value in enumerate(form.domains):
        if value:
            try:
                normalize_domain(value)
            except InvalidSetting as problem:
                form.errors[f"domains-{index}"] = sentence(problem.reason)
    return form


def _place_service_error(form: CustomerForm, problem: InvalidSetting | Conflict) -> None:
    """Put a refusal of the service beside the domain it names, else on the field it names."""
    message = sentence(problem.reason if isinstance(problem, InvalidSetting) else str(problem))
    if isinstance(problem, InvalidSetting) and problem.field != "domains":
        form.errors[problem.field] = message
        return
    text = str(problem).lower()
    for index, value in enumerate(form.domains):
        try:
            domain = normalize_domain(value) if value else ""
        except InvalidSetting:
            continue
        if domain and f"domain {domain} " in text:
            form.errors[f"domains-{index}"] = message
            return
    form.errors["domains"] = message


@router.get("/settings/customers/new")
def new_customer_page(request: Request, service: ServiceDep, user: AdminUserDep) -> Response:
    return _render_customer(request, service, user, None)


@router.post("/settings/customers")
def create_customer(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    name: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
    domains: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form = _customer_form(name, notes, domains or [])
    if not form.errors:
        try:
            with service.db.write() as session:
                customer_id = customers.create(session, CustomerInput(name, notes, [d for d in form.domains if d])).id
        except (InvalidSetting, Conflict) as problem:
            _place_service_error(form, problem)
    if form.errors:
        return _render_customer(request, service, user, None, form, status_code=422)
    return RedirectResponse(f"/settings/customers/{customer_id}?saved=1", status_code=303)


@router.get("/settings/customers/{customer_id:int}")
def customer_page(
    request: Request, service: ServiceDep, user: AdminUserDep, customer_id: int, saved: int = 0
) -> Response:
    return _render_customer(request, service, user, customer_id, notice="Saved." if saved else None)


@router.post("/settings/customers/{customer_id:int}")
def update_customer(
    request: Request,
    service: ServiceDep,
    user: AdminUserDep,
    customer_id: int,
    name: Annotated[str, Form()] = "",
    notes: Annotated[str, Form()] = "",
    domains: Annotated[list[str] | None, Form()] = None,
) -> Response:
    form = _customer_form(name, notes, domains or [])
    if not form.errors:
        changes = {"name": name, "notes": notes, "domains": [d for d in form.domains if d]}
        try:
            with service.db.write() as session:
                customers.update(session, customer_id, changes)
        except NotFound as problem:
            return not_found(request, user, str(problem))
        except (InvalidSetting, Conflict) as problem:
            _place_service_error(form, problem)
    if form.errors:
        return _render_customer(request, service, user, customer_id, form, status_code=422)
    return RedirectResponse(f"/settings/customers/{customer_id}?saved=1", status_code=303)


@router.post("/settings/customers/{customer_id:int}/delete")
def delete_customer(request: Request, service: ServiceDep, user: AdminUserDep, customer_id: int) -> Response:
    try:
        with service.db.write() as session:
            customers.delete(session, customer_id)
    except NotFound as problem:
        return not_found(request, user, str(problem))
    return RedirectResponse("/settings/customers?deleted=1", status_code=303)
