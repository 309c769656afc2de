"""The service's routes, one module per user: the patient's session, the counter, the technician, pages."""
