"""The flow registry, in dependency order. Stdlib-only imports: read at every cold start."""

from p2c_core.flow import Flow
from p2c_core.flows.accounts import accounts
from p2c_core.flows.contacts import contact_customers, contacts
from p2c_core.flows.invoices import invoices
from p2c_core.flows.orders import fno_orders, orders
from p2c_core.flows.products import products
from p2c_core.flows.quotes import quotes

FLOWS: tuple[Flow, ...] = (accounts, products, contacts, contact_customers, quotes, orders, fno_orders, invoices)
BY_NAME: dict[str, Flow] = {f.name: f for f in FLOWS}


def get_flow(name: str) -> Flow:
    try:
        return BY_NAME[name]
    except KeyError:
        raise KeyError(f"unknown flow {name!r}; known: {', '.join(BY_NAME)}") from None
