"""The form renderer: every field of every form renders through one template (templates/forms/field.html)."""

from django.forms.renderers import TemplatesSetting


class PortalFormRenderer(TemplatesSetting):
    """Django's renderer over the project's templates, with the portal's field template."""

    field_template_name = "forms/field.html"
