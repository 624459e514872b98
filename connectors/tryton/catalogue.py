"""What the Tryton connector offers: configuration fields, actor types and their fields, and lists.

Representation (docs/connectors/tryton.md):
- Customer, Supplier, Partner: a ``party.party`` in the party category the connection names for it.
- Person: a ``party.party`` joined to its customer (or supplier, partner) by a ``party.relation`` of the
  type the connection names ("Contact person"); needs the party_relationship module.
- Project: a ``project.work`` of type project, its customer in ``party``; needs the project module.
Addresses and contact mechanisms are the party's first of each kind.
"""

from __future__ import annotations

from connectors.protocol import ActorType, FieldAccess, FieldInfo, FieldType

# The tables and word lists below keep their rows as written (`# fmt: skip`): they read as tables, one row a line.

N, M, R = FieldAccess.NORMAL, FieldAccess.MANDATORY, FieldAccess.READ_ONLY
T, L, D = FieldType.TEXT, FieldType.LIST, FieldType.DOUBLE


def f(key: str, label: str, kind: FieldType, access: FieldAccess = N, **extra: object) -> FieldInfo:
    return FieldInfo(key=key, label=label, type=kind, access=access, **extra)  # type: ignore[arg-type]


# The company list (v1.1, config_list_values) is read with these settings: Tryton lists its companies to a user
# logged in to a database. Their names in Swedish, for the message that asks for them.
COMPANY_LIST_NEEDS = ["server_url", "database", "user", "password"]
SWEDISH_LABELS = {"server_url": "Tryton-serverns URL", "database": "databas", "user": "användare",
                  "password": "lösenord"}  # fmt: skip
CONFIG_FIELDS = [
    f("server_url", "Tryton server URL", T, M, default="http://127.0.0.1:8000", max_length=200,
      description="The address trytond listens on, e.g. http://erp.example.com:8000"),
    f("database", "Database", T, M, max_length=100),
    f("user", "User", T, M, default="admin", max_length=100,
      description="A Tryton user allowed to read and write parties (and projects)."),
    f("password", "Password", FieldType.PASSWORD, M, max_length=200),
    f("company", "Company", L, list_name="companies", depends_on=COMPANY_LIST_NEEDS,
      description="The Tryton company projects belong to; needed only for projects. The list shows the server's "
                  "companies once the server URL, database, user and password are filled in."),
    f("customer_category", "Category for customers", T, M, default="Customer", max_length=100),
    f("supplier_category", "Category for suppliers", T, default="Supplier", max_length=100,
      description="Leave empty to not sync suppliers."),
    f("partner_category", "Category for partners", T, default="", max_length=100,
      description="Leave empty to not sync partners."),
    f("person_relation", "Relation type of contact persons", T, default="Contact person", max_length=100,
      description="The party relation type that joins a person to their company; leave empty to not sync persons."),
    f("language", "Language", L, default="en", list_name="languages"),
]  # fmt: skip
CONFIG_LISTS = {"languages": [("en", "English"), ("sv", "Svenska"), ("de", "Deutsch"), ("fr", "Français"),
                              ("es", "Español"), ("nl", "Nederlands"), ("fi", "Suomi"), ("da", "Dansk")]}  # fmt: skip

ORGANISATION = [
    f("NUMBER2", "Code", T, R, max_length=100),
    f("NAME", "Name", T, M, max_length=200),
    f("VATNO", "Tax identifier", T, max_length=50),
    f("PHONE", "Phone", T, max_length=60),
    f("EMAIL", "E-mail", T, max_length=200),
    f("URL", "Website", T, max_length=200),
    f("POSTALAD1", "Street", T, max_length=200),
    f("POSTALZIP", "Postal code", T, max_length=20),
    f("POSTALCITY", "City", T, max_length=100),
    f("COUNTRY", "Country", L, list_name="countries"),
    f("LANGUAGE", "Language", L, list_name="languages"),
]
FIELDS: dict[ActorType, list[FieldInfo]] = {
    ActorType.CUSTOMER: ORGANISATION,
    ActorType.SUPPLIER: ORGANISATION,
    ActorType.PARTNER: ORGANISATION,
    ActorType.PERSON: [
        f("NUMBER", "Code", T, R, max_length=100),
        f("NAME", "Name", T, max_length=200, description="The person's whole name, as Tryton keeps it."),
        f("FIRSTNAME", "First name", T, max_length=100,
          description="Tryton keeps one name: everything before its last word."),
        f("LASTNAME", "Last name", T, max_length=100, description="The last word of the name in Tryton."),
        f("EMAIL", "E-mail", T, max_length=200),
        f("PHONE_DIRECT", "Phone", T, max_length=60),
        f("PHONE_MOBILE", "Mobile phone", T, max_length=60),
    ],
    ActorType.PROJECT: [
        f("NUMBER", "Number", T, R, max_length=100),
        f("NAME", "Name", T, M, max_length=200),
        f("TEXT", "Comment", T, max_length=4000),
        f("STATUS", "Status", L, list_name="project_status"),
        f("HOURS_LOGGED", "Hours logged", D, R),
    ],
}  # fmt: skip
INDEX = {actor_type: {field.key: field for field in fields} for actor_type, fields in FIELDS.items()}
SEARCHABLE: dict[ActorType, list[str]] = {
    ActorType.CUSTOMER: ["NAME", "NUMBER2", "POSTALCITY", "COUNTRY"],
    ActorType.SUPPLIER: ["NAME", "NUMBER2", "POSTALCITY", "COUNTRY"],
    ActorType.PARTNER: ["NAME", "NUMBER2", "POSTALCITY", "COUNTRY"],
    ActorType.PERSON: ["NAME", "FIRSTNAME", "LASTNAME", "EMAIL"],
    ActorType.PROJECT: ["NAME", "NUMBER", "STATUS"],
}
# Contact mechanism types behind the fields that hold one.
MECHANISMS = {"PHONE": "phone", "EMAIL": "email", "URL": "website", "PHONE_DIRECT": "phone", "PHONE_MOBILE": "mobile"}
ADDRESS = {"POSTALAD1": "street", "POSTALZIP": "postal_code", "POSTALCITY": "city"}
ORGANISATIONS = (ActorType.CUSTOMER, ActorType.SUPPLIER, ActorType.PARTNER)
CATEGORY_SETTING = {ActorType.CUSTOMER: "customer_category", ActorType.SUPPLIER: "supplier_category",
                    ActorType.PARTNER: "partner_category"}  # fmt: skip

# Protocol v1.1, capability labels. Tryton translates its own field names (ir.model.field's string) when a
# language's translations are loaded; its party and project modules ship none in Swedish, so this table gives the
# Swedish of every text above, and Tryton's own translation is taken where it has one.
ACTOR_TYPE_LABELS: dict[ActorType, dict[str, str]] = {
    ActorType.CUSTOMER: {"en": "Customer", "sv": "Kund"},
    ActorType.SUPPLIER: {"en": "Supplier", "sv": "Leverantör"},
    ActorType.PARTNER: {"en": "Partner", "sv": "Partner"},
    ActorType.PERSON: {"en": "Person", "sv": "Person"},
    ActorType.PROJECT: {"en": "Project", "sv": "Projekt"},
}
SWEDISH: dict[str, str] = {
    "Tryton server URL": "Tryton-serverns URL", "The address trytond listens on, e.g. http://erp.example.com:8000":
    "Adressen som trytond lyssnar på, t.ex. http://erp.example.com:8000", "Database": "Databas", "User": "Användare",
    "A Tryton user allowed to read and write parties (and projects).":
    "En Tryton-användare som får läsa och skriva parter (och projekt).", "Password": "Lösenord", "Company": "Företag",
    "The name of the Tryton company projects belong to; needed only for projects.":
    "Namnet på Tryton-företaget som projekten hör till; behövs bara för projekt.",
    "Category for customers": "Kategori för kunder", "Category for suppliers": "Kategori för leverantörer",
    "Leave empty to not sync suppliers.": "Lämna tomt för att inte synkronisera leverantörer.",
    "Category for partners": "Kategori för partner", "Leave empty to not sync partners.":
    "Lämna tomt för att inte synkronisera partner.", "Relation type of contact persons": "Relationstyp för kontaktpersoner",
    "The party relation type that joins a person to their company; leave empty to not sync persons.":
    "Den relationstyp som knyter en person till sitt företag; lämna tomt för att inte synkronisera personer.",
    "Language": "Språk", "Code": "Kod", "Name": "Namn", "Tax identifier": "Momsregistreringsnummer", "Phone": "Telefon",
    "E-mail": "E-post", "Website": "Webbplats", "Street": "Gatuadress", "Postal code": "Postnummer", "City": "Ort",
    "Country": "Land", "The person's whole name, as Tryton keeps it.": "Personens hela namn, som Tryton har det.",
    "First name": "Förnamn", "Tryton keeps one name: everything before its last word.":
    "Tryton har ett namn: allt före dess sista ord.", "Last name": "Efternamn",
    "The last word of the name in Tryton.": "Namnets sista ord i Tryton.", "Mobile phone": "Mobiltelefon",
    "Number": "Nummer", "Comment": "Kommentar", "Status": "Status", "Hours logged": "Registrerade timmar",
}  # fmt: skip
# The Tryton field behind an actor field, whose translated string Tryton may have.
TRYTON_FIELD: dict[tuple[ActorType, str], tuple[str, str]] = {
    **{(t, key): ("party.party", name) for t in (ActorType.CUSTOMER, ActorType.SUPPLIER, ActorType.PARTNER,
                                                   ActorType.PERSON) for key, name in (("NUMBER2", "code"),
                                                   ("NUMBER", "code"), ("NAME", "name"), ("LANGUAGE", "lang"))},
    (ActorType.PROJECT, "NAME"): ("project.work", "name"), (ActorType.PROJECT, "TEXT"): ("project.work", "comment"),
    (ActorType.PROJECT, "STATUS"): ("project.work", "status"),
}  # fmt: skip


def swedish(english: str) -> dict[str, str]:
    return {"en": english, "sv": SWEDISH.get(english, english)}


def labelled(field: FieldInfo, tryton_sv: str = "") -> FieldInfo:
    """A field with its English and Swedish label (Tryton's Swedish when it has one) and description."""
    labels = swedish(field.label)
    if tryton_sv:
        labels["sv"] = tryton_sv
    extra: dict[str, object] = {"labels": labels}
    if field.description:
        extra["descriptions"] = swedish(field.description)
    return field.model_copy(update=extra)


CONFIG_FIELDS_LABELLED = [labelled(field) for field in CONFIG_FIELDS]
