package email

import (
	"regexp"
	"strings"

	"golang.org/x/net/html"
	"golang.org/x/net/html/atom"
)

// HTMLText turns an HTML mail body into readable text: block elements
// (paragraphs, headings, list items, table rows, quotes) start new
// lines, <br> breaks a line, list items start with "- ", a link shows
// its address after its text ("text (url)") unless the text is the
// address, and scripts, styles and the head are dropped. Runs of spaces
// collapse as a browser would, except inside <pre>.
func HTMLText(body string) string {
	doc, err := html.Parse(strings.NewReader(body))
	if err != nil {
		// Nested too deep for the parser (it refuses some 500 open
		// elements): keep the resident's words without the layout.
		return htmlTokens(body)
	}
	w := &htmlWriter{}
	w.walk(doc, false)
	return tidy(w.b.String())
}

type htmlWriter struct {
	b strings.Builder
	// space says a space is owed before the next word.
	space bool
}

var blocks = map[atom.Atom]bool{
	atom.P: true, atom.Div: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Ul: true, atom.Ol: true, atom.Li: true, atom.Table: true, atom.Tr: true, atom.Blockquote: true, atom.Pre: true,
	atom.Hr: true, atom.Section: true, atom.Article: true, atom.Header: true, atom.Footer: true, atom.Address: true,
	atom.Dl: true, atom.Dt: true, atom.Dd: true, atom.Center: true, atom.Form: true, atom.Fieldset: true,
}

// paragraphs are the blocks that leave a blank line around them.
var paragraphs = map[atom.Atom]bool{
	atom.P: true, atom.H1: true, atom.H2: true, atom.H3: true, atom.H4: true, atom.H5: true, atom.H6: true,
	atom.Blockquote: true, atom.Pre: true, atom.Table: true, atom.Ul: true, atom.Ol: true,
}

func (w *htmlWriter) newline(n int) {
	w.space = false
	s := w.b.String()
	have := len(s) - len(strings.TrimRight(s, "\n"))
	if len(s) == 0 {
		return
	}
	for ; have < n; have++ {
		w.b.WriteByte('\n')
	}
}

func (w *htmlWriter) text(s string, pre bool) {
	if pre {
		w.b.WriteString(s)
		w.space = false
		return
	}
	words := strings.Fields(s)
	if len(words) == 0 {
		if s != "" {
			w.space = true
		}
		return
	}
	if startsWithSpace(s) {
		w.space = true
	}
	for i, word := range words {
		if (i > 0 || w.space) && w.b.Len() > 0 && !strings.HasSuffix(w.b.String(), "\n") {
			w.b.WriteByte(' ')
		}
		w.b.WriteString(word)
	}
	w.space = endsWithSpace(s)
}

func startsWithSpace(s string) bool { return s != "" && strings.TrimLeft(s, " \t\r\n\f") != s }
func endsWithSpace(s string) bool   { return s != "" && strings.TrimRight(s, " \t\r\n\f") != s }

// htmlTokens is HTMLText without the document tree: a pass of the
// tokenizer, which has no depth limit, writing the text and starting a
// line at each block element.
func htmlTokens(body string) string {
	w := &htmlWriter{}
	z := html.NewTokenizer(strings.NewReader(body))
	skip := 0
	for {
		switch z.Next() {
		case html.ErrorToken:
			return tidy(w.b.String())
		case html.TextToken:
			if skip == 0 {
				w.text(html.UnescapeString(string(z.Text())), false)
			}
		case html.StartTagToken, html.EndTagToken, html.SelfClosingTagToken:
			name, _ := z.TagName()
			a := atom.Lookup(name)
			switch {
			case a == atom.Script || a == atom.Style || a == atom.Head || a == atom.Title:
				if z.Token().Type == html.StartTagToken {
					skip++
				} else if skip > 0 {
					skip--
				}
			case a == atom.Br:
				w.b.WriteByte('\n')
				w.space = false
			case blocks[a]:
				w.newline(1)
			}
		}
	}
}

func (w *htmlWriter) walk(n *html.Node, pre bool) {
	switch n.Type {
	case html.TextNode:
		w.text(n.Data, pre)
		return
	case html.CommentNode, html.DoctypeNode:
		return
	case html.ElementNode:
		switch n.DataAtom {
		case atom.Script, atom.Style, atom.Head, atom.Title, atom.Noscript, atom.Template:
			return
		case atom.Br:
			w.b.WriteByte('\n')
			w.space = false
			return
		case atom.Img:
			if alt := attr(n, "alt"); strings.TrimSpace(alt) != "" {
				w.text("["+strings.TrimSpace(alt)+"]", false)
			}
			return
		case atom.A:
			w.link(n, pre)
			return
		case atom.Td, atom.Th:
			w.text(" ", false)
		}
		if blocks[n.DataAtom] {
			if paragraphs[n.DataAtom] {
				w.newline(2)
			} else {
				w.newline(1)
			}
		}
		if n.DataAtom == atom.Li {
			w.b.WriteString("- ")
		}
		if n.DataAtom == atom.Pre {
			pre = true
		}
	}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		w.walk(c, pre)
	}
	if n.Type == html.ElementNode && blocks[n.DataAtom] {
		if paragraphs[n.DataAtom] {
			w.newline(2)
		} else {
			w.newline(1)
		}
	}
}

// link writes a link's text and, when it says something else, its
// address.
func (w *htmlWriter) link(n *html.Node, pre bool) {
	inner := &htmlWriter{}
	for c := n.FirstChild; c != nil; c = c.NextSibling {
		inner.walk(c, pre)
	}
	text := strings.TrimSpace(inner.b.String())
	href := strings.TrimSpace(attr(n, "href"))
	shown := strings.TrimPrefix(href, "mailto:")
	switch {
	case text == "" && href == "":
		return
	case text == "":
		text = shown
	case href != "" && text != href && text != shown && !strings.HasPrefix(href, "#"):
		text += " (" + shown + ")"
	}
	if startsWithSpace(text) || w.space {
		w.space = true
	}
	w.text(text, false)
}

func attr(n *html.Node, key string) string {
	for _, a := range n.Attr {
		if a.Key == key {
			return a.Val
		}
	}
	return ""
}

var blankLines = regexp.MustCompile(`\n{3,}`)

// tidy trims each line's trailing spaces and the text's ends, and keeps
// at most one blank line in a row.
func tidy(s string) string {
	s = strings.ReplaceAll(s, "\r\n", "\n")
	s = strings.ReplaceAll(s, "\r", "\n")
	s = strings.ReplaceAll(s, "\u00a0", " ")
	lines := strings.Split(s, "\n")
	for i, l := range lines {
		lines[i] = strings.TrimRight(l, " \t\f\v")
	}
	s = strings.Join(lines, "\n")
	s = blankLines.ReplaceAllString(s, "\n\n")
	return strings.Trim(s, "\n ")
}
