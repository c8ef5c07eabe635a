"""Static files in production: WhiteNoise's compressed manifest storage, each file's URL worked out
once per process. The manifest is read when the process starts and does not change under it, and
every page's frame names four static files (`{% static %}` re-parsing and re-joining each path was
a twentieth of a bare page's CPU in issue 17's profile)."""

from django.conf import settings
from whitenoise.storage import CompressedManifestStaticFilesStorage


class StaticFilesStorage(CompressedManifestStaticFilesStorage):
    def url(self, name, force=False):
        if force or settings.DEBUG:
            return super().url(name, force)
        # Kept beside the manifest it came from: collectstatic in this process makes a new one.
        memo = self.__dict__.get("_url_memo")
        if memo is None or memo[0] is not self.hashed_files:
            memo = self._url_memo = (self.hashed_files, {})
        found = memo[1].get(name)
        if found is None:
            found = memo[1][name] = super().url(name)
        return found
