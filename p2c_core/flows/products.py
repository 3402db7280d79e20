"""products: F&O sellable released products -> Sales products. FLOWS.md, products.

p2c sets the product's default price list and price; the P2C solution's product plug-in
puts it on that list as a price list item, so p2c writes no price list item itself.
"""

from p2c_core.flow import Bind, Const, Dataverse, Default, Field, FinOps, Flow, PriceList, ValueMap

SALES_UNIT = Bind(ValueMap("unit", "SalesUnitSymbol"), "uoms", "name")

products = Flow(
    name="products",
    # The entity exports only sellable products; no modified date: a content-hash scan.
    # Released per company, one Sales product: the first company that releases it owns it.
    source=FinOps("CDSReleasedDistinctProducts", key="ProductNumber", shared=True),
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
        "pricelevelid": PriceList("CurrencyCode"),  # Default Price List
    },
    on_create={
        "msdynce_ismaintainedexternally": Const(True),
        "defaultuomscheduleid": Bind(Default("unit_group"), "uomschedules", "name"),
    },
    required=("name",),
    schedule="0 */15 * * * *",
)
