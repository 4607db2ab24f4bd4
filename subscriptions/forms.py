"""Forms of the subscriber pages: validation only; the services decide."""

from django import forms
from django.utils.translation import gettext_lazy as _


class CancelForm(forms.Form):
    when = forms.ChoiceField(
        label=_("When"),
        choices=[
            ("period_end", _("At the end of the current period (you keep access until then)")),
            ("now", _("Now (access ends immediately; no refund)")),
        ],
        initial="period_end",
        widget=forms.RadioSelect,
    )
    reason = forms.CharField(label=_("Reason (optional)"), required=False, max_length=200)


class PauseForm(forms.Form):
    periods = forms.TypedChoiceField(
        label=_("Pause for"),
        choices=[("1", _("1 period")), ("2", _("2 periods")), ("3", _("3 periods")), ("", _("Until I resume"))],
        coerce=int,
        empty_value=None,
        required=False,
        initial="1",
        widget=forms.RadioSelect,
    )
