"""CRM analysis workbook helpers."""
