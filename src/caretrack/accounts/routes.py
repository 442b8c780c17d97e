"""Accounts over HTTP: sign-up, login, second factor, password reset, invitations, profile,
access tokens, and the admin's user management; JSON API and pages."""

from __future__ import annotations

from urllib.parse import urlsplit

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response

from caretrack.accounts import service
from caretrack.accounts.models import User
from caretrack.accounts.ratelimit import LoginLimiter, TooManyRequests
from caretrack.accounts.schemas import (
    Invitation,
    ProfileOut,
    ProfileUpdate,
    TokenCreate,
    TokenCreated,
    TokenList,
    TokenOut,
    UserChange,
    UserList,
    UserOut,
    UserQuery,
)
from caretrack.accounts.sessions import cookie_name, cookie_options, create_session
from caretrack.core.errors import CareTrackError, ValidationError
from caretrack.core.roles import Role
from caretrack.http.apikit import PUBLIC, ApiRouter
from caretrack.http.clients import client_address
from caretrack.http.pagekit import PageRouter, redirect, render
from caretrack.site.landing import DASHBOARDS

api = ApiRouter("accounts")
pages = PageRouter()
ADMIN = [Role.ADMIN]


async def start(app: Starlette) -> None:
    app.state.login_limiter = LoginLimiter(app.state.settings.redis_url)


async def stop(app: Starlette) -> None:
    await app.state.login_limiter.close()


def _settings(request: Request):
    return request.app.state.settings


def _address(request: Request) -> str | None:
    return client_address(request.scope)


def safe_next(value: str | None, fallback: str) -> str:
    """Only same-site relative paths, so a login link cannot send users elsewhere."""
    if (value and value.startswith("/") and not value.startswith("//") and not urlsplit(value).netloc
            and "\\" not in value):
        return value
    return fallback


def _limiter(request: Request) -> LoginLimiter:
    return request.app.state.login_limiter


def _refused(request: Request, template: str, exc: CareTrackError, context: dict | None = None) -> Response:
    """A form page again with the error; a throttled request also says when to retry."""
    response = render(request, template, context, status_code=exc.status_code, flashes=[("error", exc.message)])
    if isinstance(exc, TooManyRequests):
        response.headers["retry-after"] = str(exc.retry_after)
    return response


async def _sign_in(request: Request, user: User, next_url: str | None, *, method: str = "password") -> Response:
    settings = _settings(request)
    old = request.state.session
    if old is not None:  # a new id at every login
        await service.do_logout(old, _address(request))
    secret, session = await create_session(user, settings, client_address=_address(request),
                                           user_agent=request.headers.get("user-agent"))
    await service.do_record_login(user, session, _address(request), method=method)
    if user.needs_mfa:
        target = "/mfa/verify" if user.totp_enrolled_at else "/mfa/setup"
    else:
        target = safe_next(next_url, DASHBOARDS[str(user.role)])
    response = redirect(target)
    response.set_cookie(cookie_name(settings), secret, **cookie_options(settings))
    return response


# --- pages: signing in and out -------------------------------------------------------------


@pages.get("/login", roles=PUBLIC)
async def login_page(request: Request, user) -> Response:
    if user is not None:
        return redirect(DASHBOARDS[str(user.role)])
    return render(request, "accounts/login.html", {"next": request.query_params.get("next", "")})


@pages.post("/login", roles=PUBLIC)
async def login(request: Request, form) -> Response:
    email, next_url = str(form.get("email", "")), str(form.get("next", ""))
    try:
        user = await service.check_login(_settings(request), _limiter(request), email=email,
                                         password=str(form.get("password", "")), client_address=_address(request))
    except CareTrackError as exc:
        return _refused(request, "accounts/login.html", exc, {"email": email, "next": next_url})
    return await _sign_in(request, user, next_url)


@pages.get("/login/link", roles=PUBLIC)
async def sign_in_link_page(request: Request) -> Response:
    return render(request, "accounts/sign_in_link.html")


@pages.post("/login/link", roles=PUBLIC)
async def sign_in_with_link(request: Request, form) -> Response:
    try:
        user = await service.do_sign_in_with_link(str(form.get("token", "")), _address(request))
    except CareTrackError as exc:
        return render(request, "accounts/sign_in_link.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    await _limiter(request).forgive_account(user.email)
    return await _sign_in(request, user, None, method="email_link")


@pages.post("/logout", roles=PUBLIC)
async def logout(request: Request) -> Response:
    if request.state.session is not None:
        await service.do_logout(request.state.session, _address(request))
    response = redirect("/login")
    response.delete_cookie(cookie_name(_settings(request)), path="/")
    return response


@pages.get("/signup", roles=PUBLIC)
async def signup_page(request: Request) -> Response:
    return render(request, "accounts/signup.html", {"role": request.query_params.get("as", "patient")})


@pages.post("/signup", roles=PUBLIC)
async def signup(request: Request, form) -> Response:
    values = {k: str(form.get(k, "")) for k in ("email", "full_name", "role")}
    try:
        # Each sign-up may write a row and send an email: a budget per client, like resets.
        await _limiter(request).count_request("signup", _address(request), "sign-ups")
        role = Role(values["role"] or "patient")
        await service.do_sign_up(_settings(request), _limiter(request), email=values["email"],
                                 full_name=values["full_name"], password=str(form.get("password", "")), role=role,
                                 client_address=_address(request))
    except ValueError:
        return render(request, "accounts/signup.html", {**values, "role": "patient"}, status_code=422,
                      flashes=[("error", "Choose patient or doctor.")])
    except CareTrackError as exc:
        return _refused(request, "accounts/signup.html", exc, values)
    # The same answer whether the address was free or taken: no session, a page saying what to do.
    return render(request, "accounts/signup.html", {"sent": True, "email": values["email"].strip()})


@pages.get("/verify-email", roles=PUBLIC)
async def verify_email_page(request: Request) -> Response:
    return render(request, "accounts/verify_email.html")


@pages.post("/verify-email", roles=PUBLIC)
async def verify_email(request: Request, form) -> Response:
    try:
        await service.do_verify_email(str(form.get("token", "")), _address(request))
    except CareTrackError as exc:
        return render(request, "accounts/verify_email.html", status_code=exc.status_code,
                      flashes=[("error", exc.message)])
    return render(request, "accounts/verify_email.html", {"verified": True},
                  flashes=[("success", "Your email address is confirmed.")])


@pages.get("/password/forgot", roles=PUBLIC)
async def forgot_page(request: Request) -> Response:
    return render(request, "accounts/forgot.html")


@pages.post("/password/forgot", roles=PUBLIC)
async def forgot(request: Request, form) -> Response:
    try:
        await _limiter(request).count_request("reset", _address(request), "password-reset requests")
    except CareTrackError as exc:
        return _refused(request, "accounts/forgot.html", exc)
    await service.do_request_password_reset(_settings(request), _limiter(request), str(form.get("email", "")),
                                            _address(request))
    return render(request, "accounts/forgot.html", {"sent": True}, flashes=[(
        "success", "If an account uses that address, we have emailed it a link to choose a new password.")])


@pages.get("/password/reset", roles=PUBLIC)
async def reset_page(request: Request) -> Response:
    return render(request, "accounts/reset.html")


@pages.post("/password/reset", roles=PUBLIC)
async def reset(request: Request, form) -> Response:
    if form.get("password") != form.get("password_again"):
        return render(request, "accounts/reset.html", {"token": form.get("token", "")}, status_code=422,
                      flashes=[("error", "The two passwords differ.")])
    try:
        await service.do_reset_password(str(form.get("token", "")), str(form.get("password", "")), _address(request))
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
async def accept_invitation(request: Request, form) -> Response:
    if form.get("password") != form.get("password_again"):
        return render(request, "accounts/invitation.html", {"token": form.get("token", "")}, status_code=422,
                      flashes=[("error", "The two passwords differ.")])
    try:
        user = await service.do_accept_invitation(str(form.get("token", "")), str(form.get("password", "")),
                                                  _address(request))
    except CareTrackError as exc:
        return render(request, "accounts/invitation.html", {"token": form.get("token", "")},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return render(request, "accounts/login.html", {"email": user.email, "next": ""},
                  flashes=[("success", "Your account is ready. Sign in with your new password.")])


# --- pages: second factor ----------------------------------------------------------------------


@pages.get("/mfa/setup", roles=None, allow_pending_mfa=True)
async def mfa_setup_page(request: Request, user) -> Response:
    if user.totp_enrolled_at is not None:
        return redirect("/mfa/verify" if not request.state.session.mfa_verified else DASHBOARDS[str(user.role)])
    secret, uri = await service.start_totp_enrolment(user)
    return render(request, "accounts/mfa_setup.html", {"secret": secret, "uri": uri})


@pages.post("/mfa/setup", roles=None, allow_pending_mfa=True)
async def mfa_setup(request: Request, user, form) -> Response:
    try:
        codes = await service.do_confirm_totp(user, str(form.get("code", "")), request.state.session,
                                              _address(request))
    except CareTrackError as exc:
        secret, uri = await service.start_totp_enrolment(user)
        return render(request, "accounts/mfa_setup.html", {"secret": secret, "uri": uri},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return render(request, "accounts/recovery_codes.html", {"codes": codes, "next": DASHBOARDS[str(user.role)]})


@pages.get("/mfa/verify", roles=None, allow_pending_mfa=True)
async def mfa_verify_page(request: Request, user) -> Response:
    if user.totp_enrolled_at is None:
        return redirect("/mfa/setup")
    return render(request, "accounts/mfa_verify.html")


@pages.post("/mfa/verify", roles=None, allow_pending_mfa=True)
async def mfa_verify(request: Request, user, form) -> Response:
    limiter = _limiter(request)
    try:
        # Counted before the code is checked (parallel guesses get only the free checks); the
        # password's throttles do not apply here: this session has proven the password already.
        await limiter.attempt(user.email, _address(request), factor="second-factor")
        await service.do_verify_second_factor(user, str(form.get("code", "")), request.state.session,
                                              _address(request))
    except CareTrackError as exc:
        return _refused(request, "accounts/mfa_verify.html", exc)
    await limiter.succeeded(user.email, _address(request), factor="second-factor")
    return redirect(DASHBOARDS[str(user.role)])


# --- pages: the signed-in user's own account -------------------------------------------------


@pages.get("/account", roles=None)
async def account_page(request: Request, user) -> Response:
    profile = await service.get_profile(user, user.id, _address(request))
    tokens = await service.list_access_tokens(user)
    return render(request, "accounts/account.html", {"profile": profile, "tokens": tokens})


@pages.post("/account", roles=None)
async def account_save(request: Request, user, form) -> Response:
    changes = {k: str(form.get(k, "")).strip() for k in ("full_name", "time_zone", "date_of_birth", "phone", "address")}
    try:
        await service.do_update_profile(user, changes, _address(request))
        flashes = [("success", "Your profile is saved.")]
        status = 200
    except CareTrackError as exc:
        flashes, status = [("error", exc.message)], exc.status_code
    user = await User.get(id=user.id)
    profile = await service.get_profile(user, user.id, _address(request))
    tokens = await service.list_access_tokens(user)
    return render(request, "accounts/account.html", {"profile": profile, "tokens": tokens},
                  status_code=status, flashes=flashes)


@pages.post("/account/password", roles=None)
async def account_password(request: Request, user, form) -> Response:
    try:
        if form.get("password") != form.get("password_again"):
            raise ValidationError("The two new passwords differ.")
        await service.do_change_password(user, str(form.get("current", "")), str(form.get("password", "")),
                                         request.state.session, _address(request))
    except CareTrackError as exc:
        profile = await service.get_profile(user, user.id, _address(request))
        return render(request, "accounts/account.html",
                      {"profile": profile, "tokens": await service.list_access_tokens(user)},
                      status_code=exc.status_code, flashes=[("error", exc.message)])
    return redirect("/account")


@pages.post("/account/logout-everywhere", roles=None)
async def logout_everywhere(request: Request, user) -> Response:
    await service.do_logout_everywhere(user, _address(request))
    response = redirect("/login")
    response.delete_cookie(cookie_name(_settings(request)), path="/")
    return response


@pages.post("/account/tokens", roles=None)
async def account_token_create(request: Request, user, form) -> Response:
    days = str(form.get("days", "")).strip()
    try:
        token, secret = await service.do_create_access_token(user, str(form.get("name", "")),
                                                             int(days) if days.isdigit() else None, _address(request))
        flashes = [("success", "Token created. Copy it now: it is not shown again.")]
        new_token, status = secret, 201
    except CareTrackError as exc:
        flashes, new_token, status = [("error", exc.message)], None, exc.status_code
    profile = await service.get_profile(user, user.id, _address(request))
    return render(request, "accounts/account.html",
                  {"profile": profile, "tokens": await service.list_access_tokens(user), "new_token": new_token},
                  status_code=status, flashes=flashes)


@pages.post("/account/tokens/{token_id:id}/revoke", roles=None)
async def account_token_revoke(request: Request, user) -> Response:
    await service.do_revoke_access_token(user, request.path_params["token_id"], _address(request))
    return redirect("/account")


# --- pages: admin user management ------------------------------------------------------------


@pages.get("/admin/users", roles=ADMIN)
async def admin_users(request: Request) -> Response:
    query = request.query_params
    try:
        users, total = await service.search_users(query.get("q", ""), query.get("role") or None)
        flashes = []
    except CareTrackError as exc:
        users, total, flashes = [], 0, [("error", exc.message)]
    return render(request, "admin/users.html", {"users": users, "total": total, "q": query.get("q", ""),
                                                "role": query.get("role", ""), "roles": list(Role)},
                  flashes=flashes)


@pages.post("/admin/users/invite", roles=ADMIN)
async def admin_invite(request: Request, user, form) -> Response:
    try:
        invited = await service.do_invite(_settings(request), user, email=str(form.get("email", "")),
                                          full_name=str(form.get("full_name", "")),
                                          role=Role(str(form.get("role", "carer"))), client_address=_address(request))
        flashes = [("success", f"Invitation sent to {invited.email}.")]
        status = 200
    except ValueError:
        flashes, status = [("error", "Choose a role.")], 422
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
async def admin_user_change(request: Request, user, form) -> Response:
    user_id = request.path_params["user_id"]
    action = str(form.get("action", ""))
    try:
        if action in ("deactivate", "activate"):
            await service.do_set_active(user, user_id, action == "activate", _address(request))
        elif action == "role":
            await service.do_change_role(user, user_id, Role(str(form.get("role", ""))), _address(request))
        elif action == "reset-mfa":
            await service.do_reset_mfa(user, user_id, _address(request))
        else:
            raise ValidationError(f"Unknown action '{action}'.")
        flashes, status = [("success", "Saved.")], 200
    except ValueError:
        flashes, status = [("error", "Choose a role.")], 422
    except CareTrackError as exc:
        flashes, status = [("error", exc.message)], exc.status_code
    subject = await service.get_user_for_admin(user_id)
    return render(request, "admin/user.html", {"subject": subject, "roles": list(Role)},
                  status_code=status, flashes=flashes)


# --- JSON API ------------------------------------------------------------------------------


@api.get("/me", summary="The signed-in user", roles=None, response=UserOut)
async def api_me(request: Request, user) -> UserOut:
    return UserOut.of(user)


@api.get("/users/{user_id:id}/profile", summary="A user's profile, with PHI", roles=None, response=ProfileOut,
         description="Yourself, or anyone for admins; anyone else gets 404.", errors=(404,))
async def api_profile(request: Request, user) -> ProfileOut:
    profile = await service.get_profile(user, request.path_params["user_id"], _address(request))
    return ProfileOut(**profile.__dict__)


@api.patch("/me/profile", summary="Change your profile", roles=None, body=ProfileUpdate, response=ProfileOut)
async def api_profile_update(request: Request, user, body: ProfileUpdate) -> ProfileOut:
    await service.do_update_profile(user, body.model_dump(exclude_unset=True), _address(request))
    profile = await service.get_profile(user, user.id, _address(request))
    return ProfileOut(**profile.__dict__)


@api.get("/me/tokens", summary="Your access tokens", roles=None, response=TokenList)
async def api_tokens(request: Request, user) -> TokenList:
    tokens = await service.list_access_tokens(user)
    return TokenList(tokens=[TokenOut(id=t.id, name=t.name, prefix=t.prefix, created_at=t.created_at,
                                      last_used_at=t.last_used_at, expires_at=t.expires_at) for t in tokens])


@api.post("/me/tokens", summary="Create an access token", roles=None, body=TokenCreate, response=TokenCreated,
          status=201)
async def api_token_create(request: Request, user, body: TokenCreate) -> TokenCreated:
    token, secret = await service.do_create_access_token(user, body.name, body.days, _address(request))
    return TokenCreated(id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at,
                        last_used_at=None, expires_at=token.expires_at, token=secret)


@api.delete("/me/tokens/{token_id:id}", summary="Revoke an access token", roles=None, status=204, errors=(404,))
async def api_token_revoke(request: Request, user) -> None:
    await service.do_revoke_access_token(user, request.path_params["token_id"], _address(request))


@api.get("/admin/users", summary="List and search users", roles=ADMIN, query=UserQuery, response=UserList)
async def api_users(request: Request, query: UserQuery) -> UserList:
    users, total = await service.search_users(query.q, query.role, query.active, query.limit, query.offset)
    return UserList(users=[UserOut.of(u) for u in users], total=total)


@api.post("/admin/invitations", summary="Invite someone by email", roles=ADMIN, body=Invitation,
          response=UserOut, status=201, errors=(409,))
async def api_invite(request: Request, user, body: Invitation) -> UserOut:
    invited = await service.do_invite(_settings(request), user, email=body.email, full_name=body.full_name,
                                      role=body.role, client_address=_address(request))
    return UserOut.of(invited)


@api.patch("/admin/users/{user_id:id}", summary="Change a user's role or deactivate them", roles=ADMIN,
           body=UserChange, response=UserOut, errors=(404,))
async def api_user_change(request: Request, user, body: UserChange) -> UserOut:
    user_id = request.path_params["user_id"]
    if body.role is not None:
        await service.do_change_role(user, user_id, body.role, _address(request))
    if body.is_active is not None:
        await service.do_set_active(user, user_id, body.is_active, _address(request))
    return UserOut.of(await service.get_user_for_admin(user_id))


@api.post("/admin/users/{user_id:id}/reset-mfa", summary="Reset a user's two-factor enrolment", roles=ADMIN,
          response=UserOut, errors=(404,))
async def api_reset_mfa(request: Request, user) -> UserOut:
    return UserOut.of(await service.do_reset_mfa(user, request.path_params["user_id"], _address(request)))
