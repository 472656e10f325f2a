package mastodon

import (
	"strings"

	"golang.org/x/net/html"
)

// Text turns a status's HTML content into plain text: paragraphs end
// with a blank line and <br> with a line break, entities are unescaped, a
// link shows its address (its text too when that is not the address
// itself, as Mastodon writes mentions and hashtags), and every other tag
// is dropped. Invisible spans that Mastodon uses to shorten long links are
// kept, so the address stays whole.
func Text(content string) string {
	var b strings.Builder
	z := html.NewTokenizer(strings.NewReader(content))
	var links []*linkState
	for {
		switch z.Next() {
		case html.ErrorToken:
			for n := len(links); n > 0; n-- { // links never closed
				l := links[n-1]
				links = links[:n-1]
				write(&b, links, l.String())
			}
			return tidy(b.String())
		case html.TextToken:
			text := string(z.Text())
			if n := len(links); n > 0 {
				links[n-1].text.WriteString(text)
			} else {
				b.WriteString(text)
			}
		case html.StartTagToken, html.SelfClosingTagToken:
			name, hasAttr := z.TagName()
			switch string(name) {
			case "br":
				write(&b, links, "\n")
			case "p":
				if b.Len() > 0 && len(links) == 0 {
					b.WriteString("\n\n")
				}
			case "a":
				var href string
				for hasAttr {
					var k, v []byte
					k, v, hasAttr = z.TagAttr()
					if string(k) == "href" {
						href = string(v)
					}
				}
				links = append(links, &linkState{href: href})
			}
		case html.EndTagToken:
			name, _ := z.TagName()
			switch string(name) {
			case "p":
				write(&b, links, "\n\n")
			case "a":
				if n := len(links); n > 0 {
					l := links[n-1]
					links = links[:n-1]
					write(&b, links, l.String())
				}
			}
		}
	}
}

type linkState struct {
	href string
	text strings.Builder
}

// String is how a link reads in plain text: its text, then its address
// in brackets unless the text already is the address (or a mention or
// hashtag, whose address says nothing more).
func (l *linkState) String() string {
	text := strings.TrimSpace(l.text.String())
	href := strings.TrimSpace(l.href)
	switch {
	case href == "":
		return text
	case text == "":
		return href
	case strings.HasPrefix(text, "@") || strings.HasPrefix(text, "#"):
		return text
	case text == href || strings.TrimSuffix(strings.TrimPrefix(strings.TrimPrefix(href, "https://"), "http://"), "/") == strings.TrimSuffix(text, "/") || strings.TrimSuffix(href, "/") == strings.TrimSuffix(text, "/"):
		return href
	}
	return text + " (" + href + ")"
}

func write(b *strings.Builder, links []*linkState, s string) {
	if n := len(links); n > 0 {
		links[n-1].text.WriteString(s)
		return
	}
	b.WriteString(s)
}

// tidy trims each line's trailing spaces, keeps at most one blank line in
// a row, and trims the whole.
func tidy(s string) string {
	lines := strings.Split(s, "\n")
	out := lines[:0]
	blank := 0
	for _, l := range lines {
		l = strings.TrimRight(l, " \t\r")
		if l == "" {
			blank++
			if blank > 1 {
				continue
			}
		} else {
			blank = 0
		}
		out = append(out, l)
	}
	return strings.TrimSpace(strings.Join(out, "\n"))
}
