package config

import (
	"fmt"
	"strings"
)

// Wording is everything in a notice that is language: sender addresses,
// subjects, labels, headings and the markers of a forward. A new eIAM
// wording is a change of this value (in the YAML configuration), not of code.
//
// The zero value is not useful; start from DefaultWording.
type Wording struct {
	// TrustedSenders are the addresses whose mail may be a notice
	// (compared case-insensitively).
	TrustedSenders []string `yaml:"trusted_senders" json:"trusted_senders"`
	// ForwardPrefixes are the subject prefixes a forward or reply adds
	// ("WG", "Fwd", ...), without the colon; matched in any letter case,
	// with or without a space before the colon, possibly several.
	ForwardPrefixes []string `yaml:"forward_prefixes" json:"forward_prefixes"`
	// Languages, tried in order.
	Languages []Language `yaml:"languages" json:"languages"`
	// Forward is how forwarding mail programs introduce a quoted message.
	Forward ForwardWording `yaml:"forward" json:"forward"`
}

// Language is the wording of the notice in one language. Every label list
// holds all the spellings of that label; labels match without regard to
// case, surrounding white space, a trailing colon or NBSP.
type Language struct {
	// Code is the language's ISO 639-1 code: de, fr, it, en.
	Code string `yaml:"code" json:"code"`
	// Subjects are the subject texts before the dash and the profile's
	// name, such as "eIAM: Abweichende Benutzerdaten". White space around
	// a colon is not significant.
	Subjects []string `yaml:"subjects" json:"subjects"`

	ProfileID    []string `yaml:"profile_id" json:"profile_id"`
	Application  []string `yaml:"application" json:"application"`
	Organisation []string `yaml:"organisation" json:"organisation"`
	SignedInAt   []string `yaml:"signed_in_at" json:"signed_in_at"`

	GivenName  []string `yaml:"given_name" json:"given_name"`
	FamilyName []string `yaml:"family_name" json:"family_name"`
	Email      []string `yaml:"email" json:"email"`
	// ExtraAttributes are attribute rows that are kept but never compared
	// (the user's language). Unknown rows are kept too; listing them here
	// only documents them.
	ExtraAttributes []string `yaml:"extra_attributes" json:"extra_attributes"`

	// AttributeHeading is the first header cell of the table layout.
	AttributeHeading []string `yaml:"attribute_heading" json:"attribute_heading"`
	// ExpectedHeading names the data entered in the portal, ActualHeading
	// the data of the signed-in user (table headers and block headings).
	ExpectedHeading []string `yaml:"expected_heading" json:"expected_heading"`
	ActualHeading   []string `yaml:"actual_heading" json:"actual_heading"`
}

// ForwardWording is how mail programs mark a forwarded message in its body.
type ForwardWording struct {
	// Markers are the lines a mail program writes above the quoted
	// header block, such as Gmail's "---------- Forwarded message
	// ---------" or Apple Mail's "Begin forwarded message:"; matched with
	// dashes and a trailing colon trimmed, case-insensitively.
	Markers []string `yaml:"markers" json:"markers"`
	// FromLabels, SubjectLabels and ToLabels are the labels of the quoted
	// header block (Outlook's "Von:" ... "An:" ... "Betreff:"), in text or
	// in an HTML header table (Thunderbird's).
	FromLabels    []string `yaml:"from_labels" json:"from_labels"`
	SubjectLabels []string `yaml:"subject_labels" json:"subject_labels"`
	ToLabels      []string `yaml:"to_labels" json:"to_labels"`
	// OtherLabels are further header-block labels (Date, Cc, Sent).
	OtherLabels []string `yaml:"other_labels" json:"other_labels"`
}

// DefaultWording returns the wording of the contract (docs/NOTICE.md): four
// languages, the eIAM sender, Outlook's and Gmail's forward styles. The
// value returned is a fresh copy the caller may change.
func DefaultWording() Wording {
	return Wording{
		TrustedSenders:  []string{"noreply@eiam.admin.ch"},
		ForwardPrefixes: []string{"WG", "AW", "Fwd", "FW", "TR", "I"},
		Languages: []Language{
			{
				Code:             "de",
				Subjects:         []string{"eIAM: Abweichende Benutzerdaten"},
				ProfileID:        []string{"Profil-ID"},
				Application:      []string{"Anwendung"},
				Organisation:     []string{"Organisation"},
				SignedInAt:       []string{"Anmeldung am"},
				GivenName:        []string{"Vorname"},
				FamilyName:       []string{"Nachname", "Name"},
				Email:            []string{"E-Mail", "E-Mail-Adresse"},
				ExtraAttributes:  []string{"Sprache"},
				AttributeHeading: []string{"Attribut"},
				ExpectedHeading:  []string{"Im eIAM-Portal erfasst"},
				ActualHeading:    []string{"Angemeldeter Benutzer"},
			},
			{
				Code:             "fr",
				Subjects:         []string{"eIAM : Incohérence des données utilisateur"},
				ProfileID:        []string{"ID du profil"},
				Application:      []string{"Application"},
				Organisation:     []string{"Organisation"},
				SignedInAt:       []string{"Connexion le"},
				GivenName:        []string{"Prénom"},
				FamilyName:       []string{"Nom", "Nom de famille"},
				Email:            []string{"E-mail", "Adresse e-mail", "Courriel"},
				ExtraAttributes:  []string{"Langue"},
				AttributeHeading: []string{"Attribut"},
				ExpectedHeading:  []string{"Saisi dans le portail eIAM"},
				ActualHeading:    []string{"Utilisateur connecté"},
			},
			{
				Code:             "it",
				Subjects:         []string{"eIAM: Dati utente non corrispondenti"},
				ProfileID:        []string{"ID del profilo"},
				Application:      []string{"Applicazione"},
				Organisation:     []string{"Organizzazione"},
				SignedInAt:       []string{"Accesso il"},
				GivenName:        []string{"Nome"},
				FamilyName:       []string{"Cognome"},
				Email:            []string{"E-mail", "Indirizzo e-mail"},
				ExtraAttributes:  []string{"Lingua"},
				AttributeHeading: []string{"Attributo"},
				ExpectedHeading:  []string{"Registrato nel portale eIAM"},
				ActualHeading:    []string{"Utente connesso"},
			},
			{
				Code:             "en",
				Subjects:         []string{"eIAM: User data mismatch"},
				ProfileID:        []string{"Profile ID"},
				Application:      []string{"Application"},
				Organisation:     []string{"Organisation", "Organization"},
				SignedInAt:       []string{"Signed in at"},
				GivenName:        []string{"First name", "Given name"},
				FamilyName:       []string{"Last name", "Family name", "Surname"},
				Email:            []string{"E-mail", "Email", "Email address", "E-mail address"},
				ExtraAttributes:  []string{"Language"},
				AttributeHeading: []string{"Attribute"},
				ExpectedHeading:  []string{"Entered in the eIAM portal"},
				ActualHeading:    []string{"Signed-in user"},
			},
		},
		Forward: ForwardWording{
			Markers: []string{
				// Gmail; Thunderbird writes the same words ("Forwarded Message").
				"Forwarded message", "Message transféré", "Weitergeleitete Nachricht",
				"Messaggio inoltrato",
				// Outlook.
				"Original Message", "Ursprüngliche Nachricht", "Message d'origine",
				"Messaggio originale",
				// Apple Mail.
				"Begin forwarded message", "Anfang der weitergeleiteten Nachricht",
				"Début du message réexpédié", "Inizio messaggio inoltrato",
			},
			FromLabels:    []string{"Von", "De", "Da", "From", "Mittente"},
			SubjectLabels: []string{"Betreff", "Objet", "Oggetto", "Subject", "Sujet"},
			ToLabels:      []string{"An", "À", "A", "To", "Pour"},
			OtherLabels: []string{
				"Gesendet", "Datum", "Cc", "Kopie", "Envoyé", "Date", "Inviato", "Data",
				"Sent", "Reply-To", "Antwort an", "Répondre à", "Rispondi a",
			},
		},
	}
}

// Validate reports the first thing that makes the wording unusable: no
// trusted sender, no language, a language without a code, subject,
// attribute labels or headings.
func (w *Wording) Validate() error {
	if len(w.TrustedSenders) == 0 {
		return fmt.Errorf("config: wording: trusted_senders is empty: no mail could ever be a notice; list at least one eIAM sender address")
	}
	for _, s := range w.TrustedSenders {
		if !strings.Contains(s, "@") {
			return fmt.Errorf("config: wording: trusted sender %q is not an e-mail address", s)
		}
	}
	if len(w.Languages) == 0 {
		return fmt.Errorf("config: wording: no languages: list at least one")
	}
	seen := map[string]bool{}
	for i, l := range w.Languages {
		if l.Code == "" {
			return fmt.Errorf("config: wording: languages[%d] has no code", i)
		}
		if seen[l.Code] {
			return fmt.Errorf("config: wording: language %q is listed twice", l.Code)
		}
		seen[l.Code] = true
		for name, v := range map[string][]string{
			"subjects": l.Subjects, "given_name": l.GivenName, "family_name": l.FamilyName,
			"email": l.Email, "expected_heading": l.ExpectedHeading, "actual_heading": l.ActualHeading,
		} {
			if len(v) == 0 {
				return fmt.Errorf("config: wording: language %q has no %s", l.Code, name)
			}
		}
	}
	return nil
}
