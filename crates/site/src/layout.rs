//! Pages from templates: `templates/layout.html` is every page's shell (head, header, `<main>`),
//! and `templates/pages/<name>.html` is one page's title and content. [`fill`] puts values into
//! `{{placeholders}}` in one pass, so a value is never read as a template itself.

/// Puts `value_of(name)` in place of every `{{name}}` in `template`, scanning it once: text that a
/// value brings in (a ticket titled "{{more}}", say) stays as it is. A placeholder `value_of`
/// knows nothing of is left in place.
pub fn fill<'a>(template: &str, value_of: impl Fn(&str) -> Option<&'a str>) -> String {
    let mut out = String::with_capacity(template.len());
    let mut rest = template;
    while let Some(start) = rest.find("{{") {
        let Some(length) = rest[start + 2..].find("}}") else {
            break;
        };
        let name = &rest[start + 2..start + 2 + length];
        out.push_str(&rest[..start]);
        match value_of(name) {
            Some(value) => out.push_str(value),
            None => out.push_str(&rest[start..start + length + 4]),
        }
        rest = &rest[start + length + 4..];
    }
    out.push_str(rest);
    out
}

/// The page `name` whose template is `page`: its first line is its `<title>…</title>`, the rest
/// the content of `<main>`. Filled into `layout`'s `{{title}}`, `{{page}}` (the name, which the
/// page's script dispatches on) and `{{main}}`.
pub fn page(layout: &str, name: &str, page: &str) -> String {
    let (first, main) = page.split_once('\n').unwrap_or((page, ""));
    let title = first
        .trim()
        .strip_prefix("<title>")
        .and_then(|rest| rest.strip_suffix("</title>"))
        .unwrap_or("GitTix");
    fill(layout, |placeholder| match placeholder {
        "title" => Some(title),
        "page" => Some(name),
        "main" => Some(main.trim_end()),
        _ => None,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn placeholders_are_filled_once_and_unknown_ones_stay() {
        let out = fill("<h1>{{a}}</h1>{{b}}{{c}} {{", |name| match name {
            "a" => Some("{{b}}"),
            "b" => Some("B"),
            _ => None,
        });
        assert_eq!(out, "<h1>{{b}}</h1>B{{c}} {{");
    }

    #[test]
    fn a_page_is_its_title_and_content_in_the_layout() {
        let layout =
            "<title>{{title}}</title><body data-page=\"{{page}}\"><main>\n{{main}}\n</main>";
        let out = page(
            layout,
            "signin",
            "<title>Sign in · GitTix</title>\n<h1>Sign in</h1>\n",
        );
        assert_eq!(
            out,
            "<title>Sign in · GitTix</title><body data-page=\"signin\"><main>\n<h1>Sign in</h1>\n</main>"
        );
        let untitled = page(layout, "x", "<p>No title line</p>\n<p>more</p>");
        assert!(untitled.starts_with("<title>GitTix</title>"), "{untitled}");
    }
}
