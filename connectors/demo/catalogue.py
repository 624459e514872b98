"""What Demo ERP holds: its configuration screen, actor types, fields and lists."""

from __future__ import annotations

from connectors.protocol import ActorType, FieldAccess, FieldInfo, FieldType

N, M, R = FieldAccess.NORMAL, FieldAccess.MANDATORY, FieldAccess.READ_ONLY


def f(key: str, label: str, kind: FieldType, access: FieldAccess = N, **extra: object) -> FieldInfo:
    return FieldInfo(key=key, label=label, type=kind, access=access, **extra)  # type: ignore[arg-type]


T, INT, D, C, L, DT, DTT = (FieldType.TEXT, FieldType.INTEGER, FieldType.DOUBLE, FieldType.CHECKBOX, FieldType.LIST,
                          FieldType.DATE, FieldType.DATETIME)  # fmt: skip

# The configuration screen has one field of every type, as the original's sample connector does.
CONFIG_FIELDS = [
    f("intro", "Demo ERP keeps its data in its own database; use company 1 and the API key it was started with.",
      FieldType.LABEL),
    f("client_name", "Client name", T, M, description="Shown in logs to tell connections apart.", max_length=60),
    f("api_key", "API key", FieldType.PASSWORD, M, description="The key Demo ERP was started with (--api-key)."),
    f("company_number", "Company number", INT, M, default=1, description="Demo ERP has one company: 1."),
    f("vat_rate", "Standard VAT rate (%)", D, default=25.0, description="Used on new customers' invoices."),
    f("default_currency", "Default currency", L, list_name="currencies", default="SEK",
      description="Given to new customers and suppliers created from the CRM."),
    f("sync_from", "Sync changes made on or after", DT, description="Leave empty to sync all history."),
    f("review_at", "Next configuration review", DTT),
    f("read_only", "Read-only connection", C, default=False,
      description="Refuse changes from the CRM; searching and reading still work."),
]  # fmt: skip

# The configuration screen in Swedish: (label, description) by field key.
CONFIG_FIELDS_SV = {
    "intro": ("Demo ERP har sina data i en egen databas; använd företag 1 och API-nyckeln det startades med.", ""),
    "client_name": ("Klientnamn", "Visas i loggar för att skilja kopplingar åt."),
    "api_key": ("API-nyckel", "Nyckeln som Demo ERP startades med (--api-key)."),
    "company_number": ("Företagsnummer", "Demo ERP har ett företag: 1."),
    "vat_rate": ("Standardmoms (%)", "Används på nya kunders fakturor."),
    "default_currency": ("Standardvaluta", "Ges till nya kunder och leverantörer som skapas från CRM."),
    "sync_from": ("Synkronisera ändringar från och med", "Lämna tomt för att synkronisera all historik."),
    "review_at": ("Nästa genomgång av inställningarna", ""),
    "read_only": ("Skrivskyddad koppling", "Ta inte emot ändringar från CRM; sökning och läsning fungerar ändå."),
}

ADDRESS = [
    f("POSTALAD1", "Postal address", T, max_length=100),
    f("POSTALAD2", "Postal address line 2", T, max_length=100),
    f("POSTALZIP", "Postal code", T, max_length=20),
    f("POSTALCITY", "City", T, max_length=60),
    f("COUNTRY", "Country", L, list_name="countries"),
]
ORGANISATION_COMMON = [
    f("NAME", "Name", T, M, max_length=100),
    f("NUMBER1", "Short name", T, max_length=20),
    f("VATNO", "VAT number", T, max_length=20),
    f("PHONE", "Phone", T, max_length=40),
    f("EMAIL", "E-mail", T, max_length=100),
    f("URL", "Website", T, max_length=200),
    *ADDRESS,
    f("CURRENCY", "Currency", L, list_name="currencies"),
    f("PAYMENT_TERMS", "Payment terms", L, list_name="payment_terms"),
    f("BLOCKED", "Blocked", C, description="No new orders or invoices."),
]

FIELDS: dict[ActorType, list[FieldInfo]] = {
    ActorType.CUSTOMER: [
        f("NUMBER2", "Customer number", T, R),
        *ORGANISATION_COMMON,
        f("CUSTOMER_GROUP", "Customer group", L, list_name="customer_groups"),
        f("CREDIT_LIMIT", "Credit limit", D),
        f("INVOICE_COUNT", "Invoices", INT, R),
        f("BALANCE", "Balance due", D, R),
        f("CUSTOMER_SINCE", "Customer since", DT, R),
        f("LAST_INVOICE", "Last invoiced", DTT, R),
    ],
    ActorType.SUPPLIER: [
        f("NUMBER2", "Supplier number", T, R),
        *ORGANISATION_COMMON,
        f("SUPPLIER_GROUP", "Supplier group", L, list_name="supplier_groups"),
        f("BANK_ACCOUNT", "Bank account", T, max_length=34),
        f("BALANCE", "Balance owed", D, R),
    ],
    ActorType.PERSON: [
        f("NUMBER", "Person number", T, R),
        f("FIRSTNAME", "First name", T, M, max_length=60),
        f("LASTNAME", "Last name", T, max_length=60),
        f("TITLE", "Title", T, max_length=60),
        f("EMAIL", "E-mail", T, max_length=100),
        f("PHONE_DIRECT", "Direct phone", T, max_length=40),
        f("PHONE_MOBILE", "Mobile phone", T, max_length=40),
        f("BIRTHDATE", "Birth date", DT),
        f("INVOICE_RECIPIENT", "Receives invoices", C),
    ],
    ActorType.PROJECT: [
        f("NUMBER", "Project number", T, R),
        f("NAME", "Name", T, M, max_length=100),
        f("TEXT", "Description", T, max_length=2000),
        f("STATUS", "Status", L, list_name="project_status"),
        f("STARTDATE", "Start date", DT),
        f("ENDDATE", "End date", DT),
        f("BUDGET", "Budget", D),
        f("HOURS_LOGGED", "Hours logged", INT, R),
    ],
}
FIELD_INDEX = {actor_type: {field.key: field for field in fields} for actor_type, fields in FIELDS.items()}

# The field that holds an actor's own key (shown read-only), and the fields simple search looks at.
KEY_FIELD = {ActorType.CUSTOMER: "NUMBER2", ActorType.SUPPLIER: "NUMBER2", ActorType.PERSON: "NUMBER",
             ActorType.PROJECT: "NUMBER"}  # fmt: skip
SEARCH_TEXT = {
    ActorType.CUSTOMER: ("NAME", "NUMBER1", "VATNO", "EMAIL"),
    ActorType.SUPPLIER: ("NAME", "NUMBER1", "VATNO", "EMAIL"),
    ActorType.PERSON: ("FIRSTNAME", "LASTNAME", "EMAIL"),
    ActorType.PROJECT: ("NAME",),
}
SEARCHABLE = {
    ActorType.CUSTOMER: ["NAME", "NUMBER2", "NUMBER1", "VATNO", "EMAIL", "POSTALCITY", "COUNTRY", "CUSTOMER_GROUP",
                         "CREDIT_LIMIT", "INVOICE_COUNT", "BLOCKED", "CUSTOMER_SINCE", "LAST_INVOICE"],
    ActorType.SUPPLIER: ["NAME", "NUMBER2", "VATNO", "POSTALCITY", "COUNTRY", "SUPPLIER_GROUP", "BLOCKED"],
    ActorType.PERSON: ["FIRSTNAME", "LASTNAME", "EMAIL", "BIRTHDATE", "INVOICE_RECIPIENT"],
    ActorType.PROJECT: ["NAME", "NUMBER", "STATUS", "STARTDATE", "ENDDATE", "BUDGET", "HOURS_LOGGED"],
}  # fmt: skip
# Who may be whose parent.
PARENTS = {ActorType.PERSON: (ActorType.CUSTOMER, ActorType.SUPPLIER), ActorType.PROJECT: (ActorType.CUSTOMER,)}
KEY_PREFIX = {ActorType.CUSTOMER: "C", ActorType.SUPPLIER: "S", ActorType.PERSON: "P", ActorType.PROJECT: "J"}

LISTS: dict[str, list[tuple[str, str]]] = {
    "countries": [("SE", "Sweden"), ("NO", "Norway"), ("DK", "Denmark"), ("FI", "Finland"), ("IS", "Iceland"),
                  ("DE", "Germany"), ("GB", "United Kingdom"), ("NL", "Netherlands"), ("EE", "Estonia"),
                  ("PL", "Poland"), ("US", "United States")],
    "currencies": [("SEK", "Swedish krona"), ("NOK", "Norwegian krone"), ("DKK", "Danish krone"), ("EUR", "Euro"),
                   ("ISK", "Icelandic króna"), ("GBP", "Pound sterling"), ("USD", "US dollar")],
    "payment_terms": [("0", "Cash"), ("10", "10 days net"), ("30", "30 days net"), ("60", "60 days net")],
    "customer_groups": [("RET", "Retail"), ("WHO", "Wholesale"), ("PUB", "Public sector"), ("KEY", "Key account"),
                        ("INT", "International")],
    "supplier_groups": [("GOODS", "Goods"), ("SERV", "Services"), ("SUBC", "Subcontractors")],
    "project_status": [("PLAN", "Planned"), ("ACTIVE", "In progress"), ("HOLD", "On hold"), ("DONE", "Completed")],
}  # fmt: skip
CONFIG_LISTS = {"currencies"}
