from rest_framework import pagination
from rest_framework.exceptions import NotFound, ValidationError


class CursorPagination(pagination.CursorPagination):
    """Keyset pagination: `cursor` and `page_size` (≤ 100); no OFFSET, no COUNT(*)."""

    ordering = "-id"
    page_size_query_param = "page_size"
    max_page_size = 100
    invalid_cursor_message = "This cursor is not valid (it may come from another list)."

    def decode_cursor(self, request):
        # A cursor from another list or a mangled one is bad input (400), not a missing page.
        try:
            cursor = super().decode_cursor(request)
        except NotFound as exc:
            raise ValidationError({"cursor": [self.invalid_cursor_message]}) from exc
        # The position goes into a filter on the ordering field: on an id, anything but a
        # whole number in the column's range would fail there (a 500), so it is refused here.
        if cursor is not None and cursor.position is not None and self.ordering[0].lstrip("-") in ("id", "pk"):
            position = cursor.position
            if not (position.isascii() and position.isdigit() and int(position) <= 2**63 - 1):
                raise ValidationError({"cursor": [self.invalid_cursor_message]})
        return cursor

    def get_page_size(self, request):
        raw = request.query_params.get(self.page_size_query_param)
        if raw is not None:
            try:
                value = int(raw)
            except ValueError as exc:
                raise ValidationError({"page_size": ["A whole number from 1 to 100."]}) from exc
            if value < 1 or value > self.max_page_size:
                raise ValidationError({"page_size": ["A whole number from 1 to 100."]})
            return value
        return self.page_size
