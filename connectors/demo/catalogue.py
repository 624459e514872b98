"""What Demo ERP holds: its configuration screen, actor types, fields and lists."""

from __future__ import annotations

from connectors.protocol import ActorType, FieldAccess, FieldInfo, FieldType, SuggestedDirection

# The tables and word lists below keep their rows as written (`# fmt: skip`): they read as tables, one row a line.

N, M, R = FieldAccess.NORMAL, FieldAccess.MANDATORY, FieldAccess.READ_ONLY


def f(key: str, label: str, kind: FieldType, access: FieldAccess = N, **extra: object) -> FieldInfo:
    return FieldInfo(key=key, label=label, type=kind, access=access, **extra)  # type: ignore[arg-type]


T, INT, D, C, L, DT, DTT = (FieldType.TEXT, FieldType.INTEGER, FieldType.DOUBLE, FieldType.CHECKBOX, FieldType.LIST,
                          FieldType.DATE, FieldType.DATETIME)  # fmt: skip
# Money (v1.1, capability decimal): exact amounts with two decimal places, sent as strings ("1234.50").
DEC = FieldType.DECIMAL

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
        f("CREDIT_LIMIT", "Credit limit", DEC, decimal_places=2),
        f("INVOICE_COUNT", "Invoices", INT, R),
        f("BALANCE", "Balance due", DEC, R, decimal_places=2),
        f("CUSTOMER_SINCE", "Customer since", DT, R),
        f("LAST_INVOICE", "Last invoiced", DTT, R),
    ],
    ActorType.SUPPLIER: [
        f("NUMBER2", "Supplier number", T, R),
        *ORGANISATION_COMMON,
        f("SUPPLIER_GROUP", "Supplier group", L, list_name="supplier_groups"),
        f("BANK_ACCOUNT", "Bank account", T, max_length=34),
        f("BALANCE", "Balance owed", DEC, R, decimal_places=2),
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
        f("BUDGET", "Budget", DEC, decimal_places=2),
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
# The money fields, by actor type: kept as decimal strings with two places.
DECIMAL_FIELDS = {
    actor_type: [f.key for f in fields if f.type == FieldType.DECIMAL] for actor_type, fields in FIELDS.items()
}
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

# Protocol v1.1: labels per language (capability labels) and suggested directions (capability suggested_directions).
# Every English text above has its Swedish here; the answers carry both, so the CRM keeps them once and shows each
# reader their own language.

ACTOR_TYPE_LABELS: dict[ActorType, dict[str, str]] = {
    ActorType.CUSTOMER: {"en": "Customer", "sv": "Kund"},
    ActorType.SUPPLIER: {"en": "Supplier", "sv": "Leverantör"},
    ActorType.PERSON: {"en": "Person", "sv": "Person"},
    ActorType.PROJECT: {"en": "Project", "sv": "Projekt"},
}
SWEDISH: dict[str, str] = {
    "Postal address": "Postadress", "Postal address line 2": "Postadress rad 2", "Postal code": "Postnummer",
    "City": "Ort", "Country": "Land", "Name": "Namn", "Short name": "Kortnamn", "VAT number": "Momsregistreringsnummer",
    "Phone": "Telefon", "E-mail": "E-post", "Website": "Webbplats", "Currency": "Valuta",
    "Payment terms": "Betalningsvillkor", "Blocked": "Spärrad", "No new orders or invoices.": "Inga nya order eller fakturor.",
    "Customer number": "Kundnummer", "Customer group": "Kundgrupp", "Credit limit": "Kreditgräns",
    "Invoices": "Fakturor", "Balance due": "Att betala", "Customer since": "Kund sedan", "Last invoiced": "Senast fakturerad",
    "Supplier number": "Leverantörsnummer", "Supplier group": "Leverantörsgrupp", "Bank account": "Bankkonto",
    "Balance owed": "Skuld", "Person number": "Personnummer", "First name": "Förnamn", "Last name": "Efternamn",
    "Title": "Titel", "Direct phone": "Direkttelefon", "Mobile phone": "Mobiltelefon", "Birth date": "Födelsedatum",
    "Receives invoices": "Tar emot fakturor", "Project number": "Projektnummer", "Description": "Beskrivning",
    "Status": "Status", "Start date": "Startdatum", "End date": "Slutdatum", "Budget": "Budget",
    "Hours logged": "Registrerade timmar",
    # List items
    "Sweden": "Sverige", "Norway": "Norge", "Denmark": "Danmark", "Finland": "Finland", "Iceland": "Island",
    "Germany": "Tyskland", "United Kingdom": "Storbritannien", "Netherlands": "Nederländerna", "Estonia": "Estland",
    "Poland": "Polen", "United States": "USA", "Swedish krona": "Svensk krona", "Norwegian krone": "Norsk krona",
    "Danish krone": "Dansk krona", "Euro": "Euro", "Icelandic króna": "Isländsk krona", "Pound sterling": "Brittiskt pund",
    "US dollar": "Amerikansk dollar", "Cash": "Kontant", "10 days net": "10 dagar netto", "30 days net": "30 dagar netto",
    "60 days net": "60 dagar netto", "Retail": "Detaljhandel", "Wholesale": "Grossist", "Public sector": "Offentlig sektor",
    "Key account": "Nyckelkund", "International": "Internationell", "Goods": "Varor", "Services": "Tjänster",
    "Subcontractors": "Underleverantörer", "Planned": "Planerat", "In progress": "Pågår", "On hold": "Vilande",
    "Completed": "Avslutat",
}  # fmt: skip
# Fields the ERP owns: their values come from the ERP (the read-only ones can only come from it). The others, an
# actor's names and contact details, are kept in step both ways.
ERP_OWNED = frozenset({"CURRENCY", "PAYMENT_TERMS", "BLOCKED", "CUSTOMER_GROUP", "SUPPLIER_GROUP", "CREDIT_LIMIT",
                       "BANK_ACCOUNT", "INVOICE_RECIPIENT", "STATUS", "BUDGET", "STARTDATE", "ENDDATE"})  # fmt: skip


def in_both(english: str) -> dict[str, str]:
    """An English text and its Swedish, as a v1.1 label map."""
    return {"en": english, "sv": SWEDISH.get(english, english)}


def suggested(field: FieldInfo) -> SuggestedDirection:
    if field.access == R or field.key in ERP_OWNED:
        return SuggestedDirection.ERP_TO_CRM
    return SuggestedDirection.BOTH


def labelled(field: FieldInfo) -> FieldInfo:
    """An actor field with its Swedish label and description, and the direction Demo ERP suggests."""
    extra: dict[str, object] = {"labels": in_both(field.label), "suggested_direction": suggested(field)}
    if field.description:
        extra["descriptions"] = in_both(field.description)
    return field.model_copy(update=extra)


def labelled_config(field: FieldInfo) -> FieldInfo:
    label, description = CONFIG_FIELDS_SV.get(field.key, (field.label, field.description))
    extra: dict[str, object] = {"labels": {"en": field.label, "sv": label}}
    if field.description:
        extra["descriptions"] = {"en": field.description, "sv": description or field.description}
    return field.model_copy(update=extra)


FIELDS_LABELLED = {actor_type: [labelled(field) for field in fields] for actor_type, fields in FIELDS.items()}
CONFIG_FIELDS_LABELLED = [labelled_config(field) for field in CONFIG_FIELDS]
