"""A bounded memo of checked calls: F.interpolate and F.pad check their arguments and build their plans once per
distinct call (Note [Checked interpolate calls], Note [Checked pad calls]) and look the result up after that."""


class CheckedCalls:
    """What `check(*args)` returned for a key, computed on the key's first call; a None key (arguments that
    cannot be keyed safely, such as tensor values) is checked every time. The memo is cleared when it holds
    `limit` calls, so a model that resizes ever-new shapes does not grow it without bound."""

    def __init__(self, limit=1024):
        self._found, self._limit = {}, limit

    def get(self, key, check, *args):
        if key is None:
            return check(*args)
        found = self._found.get(key)
        if found is None:
            found = check(*args)
            if len(self._found) >= self._limit:
                self._found.clear()
            self._found[key] = found
        return found
