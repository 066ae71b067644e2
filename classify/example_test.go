package classify_test

import (
	"fmt"

	"github.com/eiamtriage/eiamtriage/internal/event"

	"github.com/eiamtriage/eiamtriage/classify"
)

func ExampleClassifier_Classify() {
	c := classify.New(nil) // the default free-mail list

	n := &event.Notice{
		Language: "de",
		Expected: event.Person{GivenName: "Jürg", FamilyName: "Müller", Email: "juerg.mueller@be.ch"},
		Actual:   event.Person{GivenName: "Juerg Hans", FamilyName: "Mueller", Email: "juerg.mueller@gmail.com"},
	}
	v := c.Classify(n)
	fmt.Println(v.Class, v.Rule, v.Names, v.PrivateDomain)
	for _, r := range v.Reasons {
		fmt.Println("-", r)
	}

	n.Actual = event.Person{GivenName: "Peter", FamilyName: "Müller", Email: "juerg.mueller@be.ch"}
	v = c.Classify(n)
	fmt.Println(v.Class, v.Rule, v.Names)
	for _, r := range v.Reasons {
		fmt.Println("-", r)
	}
	// Output:
	// private-email 4 same gmail.com
	// - name 'Jürg Müller' vs 'Juerg Hans Mueller': the same person, the signed-in name has the additional given name 'Hans'
	// - e-mail 'juerg.mueller@be.ch' vs 'juerg.mueller@gmail.com': the signed-in address is a private one at the free-mail provider 'gmail.com' (rule 4)
	// wrong-person 2 different
	// - given name 'Jürg' vs 'Peter': no given name in common, a different person (rule 2)
}
