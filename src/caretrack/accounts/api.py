"""Accounts' JSON API: the signed-in user, profiles, access tokens, and the admin's user
management."""

from __future__ import annotations

from starlette.requests import Request

from caretrack.accounts import service
from caretrack.accounts.models import User
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
from caretrack.accounts.service import DoctorHasPatient
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.http.apikit import ApiRouter
from caretrack.http.clients import address_of

api = ApiRouter("accounts")
ADMIN = [Role.ADMIN]


def _settings(request: Request) -> Settings:
    settings: Settings = request.app.state.settings
    return settings


def doctor_has_patient(request: Request) -> DoctorHasPatient | None:
    """Care relations live above accounts (booking); site installs the check on the app."""
    check: DoctorHasPatient | None = getattr(request.app.state, "doctor_has_patient", None)
    return check


@api.get("/me", summary="The signed-in user", roles=None, response=UserOut)
async def api_me(request: Request, user: User) -> UserOut:
    return UserOut.of(user)


@api.get("/users/{user_id:id}/profile", summary="A user's profile, with PHI", roles=None, response=ProfileOut,
         description="Yourself, or anyone for admins; anyone else gets 404.", errors=(404,))
async def api_profile(request: Request, user: User) -> ProfileOut:
    profile = await service.get_profile(user, request.path_params["user_id"], address_of(request),
                                        doctor_has_patient=doctor_has_patient(request))
    return ProfileOut(**profile.__dict__)


@api.patch("/me/profile", summary="Change your profile", roles=None, body=ProfileUpdate, response=ProfileOut)
async def api_profile_update(request: Request, user: User, body: ProfileUpdate) -> ProfileOut:
    await service.do_update_profile(user, body, address_of(request),
                                    phone_region=request.app.state.settings.phone_region)
    profile = await service.get_profile(user, user.id, address_of(request))
    return ProfileOut(**profile.__dict__)


@api.get("/me/tokens", summary="Your access tokens", roles=None, response=TokenList)
async def api_tokens(request: Request, user: User) -> TokenList:
    tokens = await service.list_access_tokens(user)
    return TokenList(tokens=[TokenOut(id=t.id, name=t.name, prefix=t.prefix, created_at=t.created_at,
                                      last_used_at=t.last_used_at, expires_at=t.expires_at) for t in tokens])


@api.post("/me/tokens", summary="Create an access token", roles=None, body=TokenCreate, response=TokenCreated,
          status=201)
async def api_token_create(request: Request, user: User, body: TokenCreate) -> TokenCreated:
    token, secret = await service.do_create_access_token(user, body, address_of(request))
    return TokenCreated(id=token.id, name=token.name, prefix=token.prefix, created_at=token.created_at,
                        last_used_at=None, expires_at=token.expires_at, token=secret)


@api.delete("/me/tokens/{token_id:id}", summary="Revoke an access token", roles=None, status=204, errors=(404,))
async def api_token_revoke(request: Request, user: User) -> None:
    await service.do_revoke_access_token(user, request.path_params["token_id"], address_of(request))


@api.get("/admin/users", summary="List and search users", roles=ADMIN, query=UserQuery, response=UserList)
async def api_users(request: Request, query: UserQuery) -> UserList:
    users, total = await service.search_users(query.q, query.role, query.active, query.limit, query.offset)
    return UserList(users=[UserOut.of(u) for u in users], total=total)


@api.post("/admin/invitations", summary="Invite someone by email", roles=ADMIN, body=Invitation,
          response=UserOut, status=201, errors=(409,))
async def api_invite(request: Request, user: User, body: Invitation) -> UserOut:
    invited = await service.do_invite(_settings(request), user, body, client_address=address_of(request))
    return UserOut.of(invited)


@api.patch("/admin/users/{user_id:id}", summary="Change a user's role or deactivate them", roles=ADMIN,
           body=UserChange, response=UserOut, errors=(404,))
async def api_user_change(request: Request, user: User, body: UserChange) -> UserOut:
    return UserOut.of(await service.do_change_user(user, request.path_params["user_id"], body, address_of(request)))


@api.post("/admin/users/{user_id:id}/reset-mfa", summary="Reset a user's two-factor enrolment", roles=ADMIN,
          response=UserOut, errors=(404,))
async def api_reset_mfa(request: Request, user: User) -> UserOut:
    return UserOut.of(await service.do_reset_mfa(user, request.path_params["user_id"], address_of(request)))
