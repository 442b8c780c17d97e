"""Invitations and the admin's user management; the command line's first admin."""

from __future__ import annotations

from tortoise.exceptions import IntegrityError
from tortoise.expressions import Q

from caretrack.accounts import passwords
from caretrack.accounts.links import consume_token, issue_token, link
from caretrack.accounts.models import AccessToken, RecoveryCode, User
from caretrack.accounts.schemas import Invitation, InvitationAcceptance, NewAdmin, UserChange
from caretrack.accounts.sessions import now, revoke_user_sessions
from caretrack.core.audit.service import Actor
from caretrack.core.errors import Conflict, NotFound, ValidationError
from caretrack.core.outbox import store as outbox
from caretrack.core.roles import Role
from caretrack.core.settings import Settings
from caretrack.core.transaction import atomic
from caretrack.mail import service as mail


async def do_invite(settings: Settings, admin: User, command: Invitation, *, client_address: str | None) -> User:
    email, full_name, role = command.email, command.full_name, command.role
    try:
        async with atomic() as tx:
            user = await User.create(using_db=tx.conn, email=email, full_name=full_name, role=role)
            secret = await issue_token(tx, user, "invite", created_by=admin)
            await tx.audit(Actor(admin.id, client_address), "user.invited", "user", user.id, role=str(role))
            await mail.send(tx, email, "invitation", {"name": full_name, "inviter": admin.full_name, "role": str(role),
                                                 "link": link(settings, "/invite/accept", secret),
                                                 "agency": settings.agency_name})
            await tx.emit("user.invited", actor_id=admin.id, subject=("user", user.id),
                          data={"name": full_name, "email": email, "role": str(role)}, roles=[Role.ADMIN])
    except IntegrityError:
        raise Conflict(f"An account with the email {email} already exists.") from None
    return user


async def do_accept_invitation(command: InvitationAcceptance, client_address: str | None) -> User:
    """The policy is checked here, against the invited account."""
    password = command.password
    async with atomic() as tx:
        token = await consume_token(tx, command.token, "invite")
        user = await User.get(id=token.user_id).using_db(tx.conn)
        passwords.check_password_policy(password, email=user.email, name=user.full_name)
        await User.filter(id=user.id).using_db(tx.conn).update(
            password_hash=passwords.hash_password(password), email_verified_at=now())
        await tx.audit(Actor(user.id, client_address), "invitation.accepted", "user", user.id)
    return await User.get(id=user.id)


async def do_create_admin(settings: Settings, command: NewAdmin) -> User:
    email, full_name, password = command.email, command.full_name, command.password
    try:
        async with atomic() as tx:
            user = await User.create(using_db=tx.conn, email=email, full_name=full_name, role=Role.ADMIN,
                                     password_hash=passwords.hash_password(password), email_verified_at=now())
            await tx.audit(Actor(None, "cli"), "user.created_admin", "user", user.id)
    except IntegrityError:
        raise Conflict(f"An account with the email {email} already exists.") from None
    return user


async def get_user_for_admin(user_id: int) -> User:
    user = await User.get_or_none(id=user_id)
    if user is None:
        raise NotFound(f"No user with id {user_id}.")
    return user


async def search_users(query: str = "", role: Role | None = None, active: bool | None = None,
                       limit: int = 50, offset: int = 0) -> tuple[list[User], int]:
    qs = User.all()
    if query:
        qs = qs.filter(Q(email__icontains=query.strip()) | Q(full_name__icontains=query.strip()))
    if role:
        qs = qs.filter(role=role)
    if active is not None:
        qs = qs.filter(is_active=active)
    total = await qs.count()
    return await qs.order_by("full_name", "id").offset(offset).limit(limit), total


async def do_set_active(admin: User, user_id: int, active: bool, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    if user.id == admin.id and not active:
        raise ValidationError("You cannot deactivate your own account.")
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(is_active=active)
        if not active:
            await revoke_user_sessions(user.id, tx.conn)
            await AccessToken.filter(user_id=user.id, revoked_at=None).using_db(tx.conn).update(revoked_at=now())
        await tx.audit(Actor(admin.id, client_address), "user.activated" if active else "user.deactivated",
                       "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    user.is_active = active
    return user


async def do_change_role(admin: User, user_id: int, role: Role, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    if user.id == admin.id:
        raise ValidationError("You cannot change your own role; ask another admin.")
    if user.role == role:
        return user
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(role=role)
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(admin.id, client_address), "user.role_changed", "user", user.id,
                       old=str(user.role), new=str(role))
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    user.role = role
    return user


async def do_change_user(admin: User, user_id: int, command: UserChange, client_address: str | None) -> User:
    if command.role is not None:
        await do_change_role(admin, user_id, command.role, client_address)
    if command.is_active is not None:
        await do_set_active(admin, user_id, command.is_active, client_address)
    return await get_user_for_admin(user_id)


async def do_reset_mfa(admin: User, user_id: int, client_address: str | None) -> User:
    user = await get_user_for_admin(user_id)
    async with atomic() as tx:
        await User.filter(id=user.id).using_db(tx.conn).update(totp_secret=None, totp_enrolled_at=None,
                                                                totp_last_step=None)
        await RecoveryCode.filter(user_id=user.id).using_db(tx.conn).delete()
        await revoke_user_sessions(user.id, tx.conn)
        await tx.audit(Actor(admin.id, client_address), "mfa.reset", "user", user.id)
        tx.after_commit(lambda: outbox.notify_auth_changed(user.id))
    return await User.get(id=user.id)

