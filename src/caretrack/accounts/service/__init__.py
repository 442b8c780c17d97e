"""Accounts: sign-up, verification, login, second factor, password reset, invitations,
administration, profiles and access tokens, one module per concept. Every action takes its
typed command (accounts.schemas) and is one transaction with its audit rows, events and
emails; callers import the actions from here."""

from caretrack.accounts.service.admin import (
    do_accept_invitation,
    do_change_role,
    do_change_user,
    do_create_admin,
    do_invite,
    do_reset_mfa,
    do_set_active,
    get_user_for_admin,
    search_users,
)
from caretrack.accounts.service.mfa import do_confirm_totp, do_verify_second_factor, start_totp_enrolment, totp_for
from caretrack.accounts.service.profiles import (
    PHI_FIELDS,
    DoctorHasPatient,
    Profile,
    can_view_profile,
    do_update_profile,
    get_profile,
)
from caretrack.accounts.service.resets import do_change_password, do_request_password_reset, do_reset_password
from caretrack.accounts.service.signin import (
    check_login,
    do_logout,
    do_logout_everywhere,
    do_record_login,
    do_sign_in_with_link,
)
from caretrack.accounts.service.signup import do_resend_verification, do_sign_up, do_verify_email
from caretrack.accounts.service.tokens import do_create_access_token, do_revoke_access_token, list_access_tokens

__all__ = [
    "PHI_FIELDS", "DoctorHasPatient", "Profile", "can_view_profile", "check_login", "do_accept_invitation",
    "do_change_password", "do_change_role", "do_change_user", "do_confirm_totp", "do_create_access_token",
    "do_create_admin", "do_invite", "do_logout", "do_logout_everywhere", "do_record_login",
    "do_request_password_reset", "do_resend_verification", "do_reset_mfa", "do_reset_password",
    "do_revoke_access_token", "do_set_active", "do_sign_in_with_link", "do_sign_up", "do_update_profile",
    "do_verify_email", "do_verify_second_factor", "get_profile", "get_user_for_admin", "list_access_tokens",
    "search_users", "start_totp_enrolment", "totp_for",
]
