"""Export: /export (the page) and /v1/export, /v1/statistics/validations/count."""

urlpatterns: list = []
