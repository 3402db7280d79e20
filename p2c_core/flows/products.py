"""products: F&O sellable released products -> Sales products and price list items. FLOWS.md, products."""

from p2c_core.flow import Bind, Const, Dataverse, Default, Field, FinOps, Flow, Lines, PriceList, ValueMap

SALES_UNIT = Bind(ValueMap("unit", "SalesUnitSymbol"), "uoms", "name")

products = Flow(
    name="products",
    # The entity exports only sellable products; no modified date: a content-hash scan.
    source=FinOps("CDSReleasedDistinctProducts", key="ProductNumber"),
    target=Dataverse("products", key="productnumber"),
    fields={
        "productnumber": Field("ProductNumber"),
        "name": Field("ProductName"),
        "description": Field("ProductDescription"),
        "defaultuomid": SALES_UNIT,
        "price": Field("SalesPrice"),
        "currentcost": Field("UnitCost"),
        "transactioncurrencyid": Bind(Field("CurrencyCode"), "transactioncurrencies", "isocurrencycode"),
        "producttypecode": ValueMap("product_type", "ProductType", number=True),
        "quantitydecimal": Field("SalesUnitDecimalPrecision", default=0),
    },
    on_create={
        "msdynce_ismaintainedexternally": Const(True),
        "defaultuomscheduleid": Bind(Default("unit_group"), "uomschedules", "name"),
    },
    # One price list item per product, in the price list of its currency.
    lines=Lines(
        source=None,
        source_parent="ProductNumber",
        source_key=None,
        target="productpricelevels",
        target_parent="productid",
        target_key=None,
        match=("pricelevelid",),
        fields={
            "pricelevelid": PriceList("CurrencyCode"),
            "uomid": SALES_UNIT,
            "amount": Field("SalesPrice"),
        },
    ),
    required=("name",),
    schedule="0 */15 * * * *",
)
