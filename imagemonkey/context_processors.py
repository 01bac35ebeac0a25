from django.urls import NoReverseMatch, reverse

# (url name, text). An entry whose page does not exist in this build is left out.
NAVIGATION = [
    ("donations:donate", "Donate"),
    ("validation:validate", "Validate"),
    ("validation:label-mode", "Label"),
    ("annotations:annotate", "Annotate"),
    ("donations:browse", "Browse"),
    ("exports:export", "Export"),
    ("exports:releases", "Releases"),
    ("validation:statistics", "Statistics"),
    ("api-docs", "API"),
    ("about", "About"),
]


def _navigation() -> list[tuple[str, str]]:
    items = []
    for name, text in NAVIGATION:
        try:
            items.append((reverse(name), text))
        except NoReverseMatch:
            continue
    return items


def site(request):
    return {"navigation": _navigation()}
