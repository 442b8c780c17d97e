"""Accounts' pages: sign-up, login, second factor, password reset, invitations, the account
page (profile, password, access tokens) and the admin's user management. Each form is parsed
into its command (accounts.schemas), as the API parses its body; a refusal shows the form
again with the problem."""

from __future__ import annotations

from typing import Any
from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.datastructures import FormData
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts import service
from caretrack.accounts.home import DASHBOARDS
from caretrack.accounts.models import User
from caretrack.accounts.ratelimit import LoginLimiter, TooManyRequests
from caretrack.accounts.schemas import (
    EmailConfirmation,
    Invitation,
    InvitationAcceptance,
    LinkSignIn,
    LogIn,
    PasswordChange,
    PasswordReset,
    PasswordResetRequest,
    ProfileUpdate,
    SecondFactor,
    SignUp,
    TokenCreate,
    TotpConfirmation,
    UserChange,
)
from caretrack.accounts.sessions import cookie_name, cookie_options, create_session
from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.validation import parse_command
from caretrack.http.apikit import PUBLIC
from caretrack.http.clients import address_of
from caretrack.http.pagekit import PageRouter, field_problems, problem_flashes, redirect, refused, render

pages = PageRouter()
ADMIN = [Role.ADMIN]
ROLES = frozenset(r.value for r in Role)
CHOOSE_A_ROLE = {"role": "Choose a role."}


async def start(app: Starlette) -> None:
    app.state.login_limiter = LoginLimiter(app.state.settings.redis_url)


async def stop(app: Starlette) -> None:
    await app.state.login_limiter.close()


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def safe_next(value: str | None, fallback: str) -> str:
    """Only same-site relative paths, so a login link cannot send users elsewhere."""
    if (value and value.startswith("/") and not value.startswith("//") and not urlsplit(value).netloc
            and "\\" not in value):
        return value
    return fallback


def _limiter(request: Request) -> LoginLimiter:
    limiter: LoginLimiter = request.app.state.login_limiter
    return limiter


def _fields(form: FormData, *names: str) -> dict[str, str]:
    return {name: str(form.get(name, "")) for name in names}


def _refused(request: Request, template: str, exc: CareTrackError, context: dict[str, Any] | None = None
             ) -> Response:
    """A form page again with every problem, each beside its field; a throttled request also says
    when to retry."""
    response = refused(request, template, exc, context)
    if isinstance(exc, TooManyRequests):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


async def _sign_in(request: Request, user: User, next_url: str | None, *, method: str = "password") -> Response:
    settings = _settings(request)
    old = request.state.session
    if old is not None:  # a new id at every login
        await service.do_logout(old, address_of(request))
    secret, session = await create_session(user, settings, client_address=address_of(request),
                                           user_agent=request.headers.get("user-agent"))
    await service.do_record_login(user, session, address_of(request), method=method)
    if user.needs_mfa:
        target = "/mfa/verify" if user.totp_enrolled_at else "/mfa/setup"
    else:
        target = safe_next(next_url, DASHBOARDS[str(user.role)])
    response = redirect(target)
    response.set_cookie(cookie_name(settings), secret, **cookie_options(settings))
    return response


# --- pages: signing in and out -------------------------------------------------------------


@pages.get("/login", roles=PUBLIC)
async def login_page(request: Request, user: User | None) -> Response:
    if user is not None:
        return redirect(DASHBOARDS[str(user.role)])
    return render(request, "accounts/login.html", {"next": request.query_params.get("next", "")})


@pages.post("/login", roles=PUBLIC)
async def login(request: Request, form: FormData) -> Response:
    email, next_url = str(form.get("email", "")), str(form.get("next", ""))
    try:
        command = parse_command(LogIn, _fields(form, "email", "password"))
        user = await service.check_login(_settings(request), _limiter(request), command,
                                         client_address=address_of(request))
    except CareTrackError as exc:
        return _refused(request, "accounts/login.html", exc, {"email": email, "next": next_url})
    return await _sign_in(request, user, next_url)


@pages.get("/login/link", roles=PUBLIC)
async def sign_in_link_page(request: Request) -> Response:
    return render(request, "accounts/sign_in_link.html")


@pages.post("/login/link", roles=PUBLIC)
async def sign_in_with_link(request: Request, form: FormData) -> Response:
    try:
        user = await service.do_sign_in_with_link(parse_command(LinkSignIn, _fields(form, "token")),
                                                  address_of(request))
    except CareTrackError as exc:
        return render(request, "accounts/sign_in_link.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    await _limiter(request).forgive_account(user.email)
    return await _sign_in(request, user, None, method="email_link")


@pages.post("/logout", roles=PUBLIC)
async def logout(request: Request) -> Response:
    if request.state.session is not None:
        await service.do_logout(request.state.session, address_of(request))
    response = redirect("/login")
    response.delete_cookie(cookie_name(_settings(request)), path="/")
    return response


@pages.get("/signup", roles=PUBLIC)
async def signup_page(request: Request) -> Response:
    return render(request, "accounts/signup.html", {"role": request.query_params.get("as", "patient")})


@pages.post("/signup", roles=PUBLIC)
async def signup(request: Request, form: FormData) -> Response:
    values = _fields(form, "email", "full_name", "role")
    try:
        # Each sign-up may write a row and send an email: a budget per client, like resets.
        await _limiter(request).count_request("signup", address_of(request), "sign-ups")
        command = parse_command(SignUp, {**values, "password": str(form.get("password", ""))})
        await service.do_sign_up(_settings(request), _limiter(request), command, client_address=address_of(request))
    except CareTrackError as exc:
        # A role that is none of ours is shown as the default again.
        shown = values if not values["role"] or values["role"] in ROLES else {**values, "role": "patient"}
        return _refused(request, "accounts/signup.html", exc, shown)
    # The same answer whether the address was free or taken: no session, a page saying what to do.
    return render(request, "accounts/signup.html", {"sent": True, "email": values["email"].strip()})


@pages.get("/verify-email", roles=PUBLIC)
async def verify_email_page(request: Request) -> Response:
    return render(request, "accounts/verify_email.html")


@pages.post("/verify-email", roles=PUBLIC)
async def verify_email(request: Request, form: FormData) -> Response:
    try:
        await service.do_verify_email(parse_command(EmailConfirmation, _fields(form, "token")), address_of(request))
    except CareTrackError as exc:
        return render(request, "accounts/verify_email.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return render(request, "accounts/verify_email.html", {"verified": True},
                  flashes=[("success", "Your email address is confirmed.")])


@pages.get("/password/forgot", roles=PUBLIC)
async def forgot_page(request: Request) -> Response:
    return render(request, "accounts/forgot.html")


@pages.post("/password/forgot", roles=PUBLIC)
async def forgot(request: Request, form: FormData) -> Response:
    try:
        await _limiter(request).count_request("reset", address_of(request), "password-reset requests")
    except CareTrackError as exc:
        return _refused(request, "accounts/forgot.html", exc)
    await service.do_request_password_reset(_settings(request), _limiter(request),
                                            parse_command(PasswordResetRequest, _fields(form, "email")),
                                            address_of(request))
    return render(request, "accounts/forgot.html", {"sent": True}, flashes=[(
        "success", "If an account uses that address, we have emailed it a link to choose a new password.")])


@pages.get("/password/reset", roles=PUBLIC)
async def reset_page(request: Request) -> Response:
    return render(request, "accounts/reset.html")


@pages.post("/password/reset", roles=PUBLIC)
async def reset(request: Request, form: FormData) -> Response:
    try:
        command = parse_command(PasswordReset, _fields(form, "token", "password", "password_again"))
        await service.do_reset_password(command, address_of(request))
    except CareTrackError as exc:
        return render(request, "accounts/reset.html", {"token": form.get("token", "")},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    response = render(request, "accounts/login.html", {"next": ""},
                      flashes=[("success", "Your password is changed. Sign in with it now.")])
    response.delete_cookie(cookie_name(_settings(request)), path="/")
    return response


@pages.get("/invite/accept", roles=PUBLIC)
async def invitation_page(request: Request) -> Response:
    return render(request, "accounts/invitation.html")


@pages.post("/invite/accept", roles=PUBLIC)
async def accept_invitation(request: Request, form: FormData) -> Response:
    try:
        command = parse_command(InvitationAcceptance, _fields(form, "token", "password", "password_again"))
        user = await service.do_accept_invitation(command, address_of(request))
    except CareTrackError as exc:
        return render(request, "accounts/invitation.html", {"token": form.get("token", "")},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return render(request, "accounts/login.html", {"email": user.email, "next": ""},
                  flashes=[("success", "Your account is ready. Sign in with your new password.")])


# --- pages: second factor ----------------------------------------------------------------------


@pages.get("/mfa/setup", roles=None, allow_pending_mfa=True)
async def mfa_setup_page(request: Request, user: User) -> Response:
    if user.totp_enrolled_at is not None:
        return redirect("/mfa/verify" if not request.state.session.mfa_verified else DASHBOARDS[str(user.role)])
    secret, uri = await service.start_totp_enrolment(user)
    return render(request, "accounts/mfa_setup.html", {"secret": secret, "uri": uri})


@pages.post("/mfa/setup", roles=None, allow_pending_mfa=True)
async def mfa_setup(request: Request, user: User, form: FormData) -> Response:
    try:
        codes = await service.do_confirm_totp(user, parse_command(TotpConfirmation, _fields(form, "code")),
                                              request.state.session, address_of(request))
    except CareTrackError as exc:
        secret, uri = await service.start_totp_enrolment(user)
        return render(request, "accounts/mfa_setup.html", {"secret": secret, "uri": uri},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": DASHBOARDS[str(user.role)]})


@pages.get("/mfa/verify", roles=None, allow_pending_mfa=True)
async def mfa_verify_page(request: Request, user: User) -> Response:
    if user.totp_enrolled_at is None:
        return redirect("/mfa/setup")
    return render(request, "accounts/mfa_verify.html")


@pages.post("/mfa/verify", roles=None, allow_pending_mfa=True)
async def mfa_verify(request: Request, user: User, form: FormData) -> Response:
    limiter = _limiter(request)
    try:
        # Counted before the code is checked (parallel guesses get only the free checks); the
        # password's throttles do not apply here: this session has proven the password already.
        await limiter.attempt(user.email, address_of(request), factor="second-factor")
        await service.do_verify_second_factor(user, parse_command(SecondFactor, _fields(form, "code")),
                                              request.state.session, address_of(request))
    except CareTrackError as exc:
        return _refused(request, "accounts/mfa_verify.html", exc)
    await limiter.succeeded(user.email, address_of(request), factor="second-factor")
    return redirect(DASHBOARDS[str(user.role)])


# --- pages: the signed-in user's own account -------------------------------------------------


@pages.get("/account", roles=None)
async def account_page(request: Request, user: User) -> Response:
    profile = await service.get_profile(user, user.id, address_of(request))
    tokens = await service.list_access_tokens(user)
    return render(request, "accounts/account.html", {"profile": profile, "tokens": tokens})


@pages.post("/account", roles=None)
async def account_save(request: Request, user: User, form: FormData) -> Response:
    changes = {k: v.strip() for k, v in _fields(form, "full_name", "time_zone", "date_of_birth", "phone",
                                                    "address").items()}
    try:
        await service.do_update_profile(user, parse_command(ProfileUpdate, changes), address_of(request),
                                        phone_region=request.app.state.settings.phone_region)
        flashes, status, errors = [("success", "Your profile is saved.")], 200, {}
    except CareTrackError as exc:
        flashes, status, errors = problem_flashes(exc), exc.status_code, field_problems(exc)
    user = await User.get(id=user.id)
    profile = await service.get_profile(user, user.id, address_of(request))
    tokens = await service.list_access_tokens(user)
    return render(request, "accounts/account.html", {"profile": profile, "tokens": tokens,
                                                       "typed": changes if errors else {}},
                  status_code=status, flashes=flashes, errors=errors)


@pages.post("/account/password", roles=None)
async def account_password(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_command(PasswordChange, _fields(form, "current", "password", "password_again"))
        await service.do_change_password(user, command, request.state.session, address_of(request))
    except CareTrackError as exc:
        profile = await service.get_profile(user, user.id, address_of(request))
        return render(request, "accounts/account.html",
                      {"profile": profile, "tokens": await service.list_access_tokens(user)},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return redirect("/account")


@pages.post("/account/logout-everywhere", roles=None)
async def logout_everywhere(request: Request, user: User) -> Response:
    await service.do_logout_everywhere(user, address_of(request))
    response = redirect("/login")
    response.delete_cookie(cookie_name(_settings(request)), path="/")
    return response


@pages.post("/account/tokens", roles=None)
async def account_token_create(request: Request, user: User, form: FormData) -> Response:
    days = str(form.get("days", "")).strip()
    try:
        # A blank or non-numeric lifetime is no lifetime: the token lasts until revoked.
        command = parse_command(TokenCreate, {"name": str(form.get("name", "")),
                                              "days": int(days) if days.isascii() and days.isdigit() else None})
        token, secret = await service.do_create_access_token(user, command, address_of(request))
        flashes = [("success", "Token created. Copy it now: it is not shown again.")]
        new_token, status = secret, 201
    except CareTrackError as exc:
        flashes, new_token, status = [("error", exc.message)], None, exc.status_code
    profile = await service.get_profile(user, user.id, address_of(request))
    return render(request, "accounts/account.html",
                  {"profile": profile, "tokens": await service.list_access_tokens(user), "new_token": new_token},
                  status_code=status, flashes=flashes)


@pages.post("/account/tokens/{token_id:id}/revoke", roles=None)
async def account_token_revoke(request: Request, user: User) -> Response:
    await service.do_revoke_access_token(user, request.path_params["token_id"], address_of(request))
    return redirect("/account")


# --- pages: admin user management ------------------------------------------------------------


@pages.get("/admin/users", roles=ADMIN)
async def admin_users(request: Request) -> Response:
    query = request.query_params
    flashes: list[tuple[str, str]]
    try:
        role = query.get("role") or None
        if role is not None and role not in ROLES:
            raise ValidationError(f"'{role}' is not a role.")
        users, total = await service.search_users(query.get("q", ""), Role(role) if role else None)
        flashes = []
    except CareTrackError as exc:
        users, total, flashes = [], 0, [("error", exc.message)]
    return render(request, "admin/users.html", {"users": users, "total": total, "q": query.get("q", ""),
                                                "role": query.get("role", ""), "roles": list(Role)},
                  flashes=flashes)


@pages.post("/admin/users/invite", roles=ADMIN)
async def admin_invite(request: Request, user: User, form: FormData) -> Response:
    try:
        command = parse_command(Invitation, {**_fields(form, "email", "full_name"),
                                             "role": str(form.get("role", "carer"))}, messages=CHOOSE_A_ROLE)
        invited = await service.do_invite(_settings(request), user, command, client_address=address_of(request))
        flashes = [("success", f"Invitation sent to {invited.email}.")]
        status = 200
    except CareTrackError as exc:
        flashes, status = [("error", exc.message)], exc.status_code
    users, total = await service.search_users()
    return render(request, "admin/users.html", {"users": users, "total": total, "q": "", "role": "",
                                                "roles": list(Role)}, status_code=status, flashes=flashes)


@pages.get("/admin/users/{user_id:id}", roles=ADMIN)
async def admin_user(request: Request) -> Response:
    subject = await service.get_user_for_admin(request.path_params["user_id"])
    return render(request, "admin/user.html", {"subject": subject, "roles": list(Role)})


@pages.post("/admin/users/{user_id:id}", roles=ADMIN)
async def admin_user_change(request: Request, user: User, form: FormData) -> Response:
    user_id = request.path_params["user_id"]
    action = str(form.get("action", ""))
    try:
        if action in ("deactivate", "activate"):
            await service.do_change_user(user, user_id, UserChange(is_active=action == "activate"), address_of(request))
        elif action == "role":
            change = parse_command(UserChange, {"role": str(form.get("role", ""))}, messages=CHOOSE_A_ROLE)
            await service.do_change_user(user, user_id, change, address_of(request))
        elif action == "reset-mfa":
            await service.do_reset_mfa(user, user_id, address_of(request))
        else:
            raise ValidationError(f"Unknown action '{action}'.")
        flashes, status = [("success", "Saved.")], 200
    except CareTrackError as exc:
        flashes, status = [("error", exc.message)], exc.status_code
    subject = await service.get_user_for_admin(user_id)
    return render(request, "admin/user.html", {"subject": subject, "roles": list(Role)},
                  status_code=status, flashes=flashes)
