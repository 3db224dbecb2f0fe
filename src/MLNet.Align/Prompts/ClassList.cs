using System.Text.Json;

namespace MLNet.Align.Prompts;

/// <summary>Reads and validates zero-shot class names and optional per-class descriptions.</summary>
public static class ClassList
{
    /// <summary>Checks a class list: at least one class, no null/blank name, no duplicate (ordinal, after trimming).</summary>
    /// <exception cref="ArgumentException">Empty list, blank name or duplicate (the message names it and its indices).</exception>
    public static IReadOnlyList<string> Validate(IReadOnlyList<string> classNames, string source = "class list")
    {
        ArgumentNullException.ThrowIfNull(classNames);
        if (classNames.Count == 0) throw new ArgumentException($"{source}: the class list is empty; zero-shot classification needs at least one class.");
        var seen = new Dictionary<string, int>(StringComparer.Ordinal);
        var result = new string[classNames.Count];
        for (int i = 0; i < classNames.Count; i++)
        {
            var name = classNames[i]?.Trim();
            if (string.IsNullOrEmpty(name)) throw new ArgumentException($"{source}: class {i} is blank.");
            if (seen.TryGetValue(name, out int first))
                throw new ArgumentException($"{source}: duplicate class name '{name}' at positions {first} and {i}; class names must be unique.");
            seen[name] = i;
            result[i] = name;
        }
        return result;
    }

    /// <summary>Loads class names, one per line (blank lines and <c>#</c> comments skipped), in file order.</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">The path is a folder, named pipe or device (checked before opening).</exception>
    /// <exception cref="ArgumentException">No class, or a duplicate (with line numbers).</exception>
    public static IReadOnlyList<string> Load(string path)
    {
        InputFiles.RequireRegularFile(path, "Class list file");
        var names = new List<string>();
        var lines = new Dictionary<string, int>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            var line = raw.Trim();
            if (line.Length == 0 || line.StartsWith('#')) continue;
            if (lines.TryGetValue(line, out int first))
                throw new ArgumentException($"{path}: duplicate class name '{line}' on lines {first} and {lineNo}; class names must be unique.");
            lines[line] = lineNo;
            names.Add(line);
        }
        return Validate(names, path);
    }
}

/// <summary>
/// Per-class descriptive sentences (the paper's VDT/WordNet prompts, docs/method.md section 4.1): class name -> sentences,
/// used verbatim (no template). Loaded from JSON (<c>{"cat": ["a small domesticated feline.", ...], ...}</c>) or TSV
/// (<c>class&lt;TAB&gt;sentence</c> per line, repeated class lines accumulate).
/// </summary>
public sealed class ClassDescriptions
{
    private readonly Dictionary<string, IReadOnlyList<string>> _byClass;

    /// <summary>Creates descriptions from a dictionary.</summary>
    /// <exception cref="ArgumentException">A class has no sentence or a blank sentence (the message names it).</exception>
    public ClassDescriptions(IReadOnlyDictionary<string, IReadOnlyList<string>> byClass)
    {
        _byClass = new Dictionary<string, IReadOnlyList<string>>(StringComparer.Ordinal);
        foreach (var (k, v) in byClass)
        {
            if (v == null || v.Count == 0) throw new ArgumentException($"Class descriptions: class '{k}' has no sentence.");
            for (int i = 0; i < v.Count; i++)
                if (string.IsNullOrWhiteSpace(v[i])) throw new ArgumentException($"Class descriptions: sentence {i} of class '{k}' is blank.");
            _byClass[k.Trim()] = v.Select(s => s.Trim()).ToArray();
        }
    }

    /// <summary>Classes that have descriptions.</summary>
    public IEnumerable<string> Classes => _byClass.Keys;

    /// <summary>
    /// Checks the description classes against the class list (names match exactly, after trimming): descriptions that
    /// match no class would be silently unused.
    /// </summary>
    /// <param name="classNames">The classes of the classifier.</param>
    /// <param name="source">The descriptions' file or option, for the message.</param>
    /// <returns>Description classes that match no class (empty when all match): the caller warns about them.</returns>
    /// <exception cref="ArgumentException">None of the description classes matches a class (the message lists both sides).</exception>
    public IReadOnlyList<string> CheckAgainst(IReadOnlyList<string> classNames, string source)
    {
        ArgumentNullException.ThrowIfNull(classNames);
        var known = new HashSet<string>(classNames, StringComparer.Ordinal);
        var unmatched = _byClass.Keys.Where(k => !known.Contains(k)).Order(StringComparer.Ordinal).ToArray();
        if (_byClass.Count > 0 && unmatched.Length == _byClass.Count)
            throw new ArgumentException($"{source}: none of its {_byClass.Count} described class(es) ({Sample(unmatched)}) matches a class of the class list " +
                $"({Sample(classNames)}); names must match exactly (case and spaces included), or the descriptions would be silently unused.");
        return unmatched;
    }

    private static string Sample(IEnumerable<string> names)
    {
        var list = names.ToList();
        return string.Join(", ", list.Take(8).Select(n => $"'{n}'")) + (list.Count > 8 ? $", ... {list.Count - 8} more" : "");
    }

    /// <summary>The sentences of <paramref name="className"/>, or an empty list.</summary>
    public IReadOnlyList<string> For(string className) => _byClass.TryGetValue(className, out var v) ? v : Array.Empty<string>();

    /// <summary>Loads a .json (object of string arrays) or any other extension as TSV (class, sentence).</summary>
    /// <exception cref="FileNotFoundException">The file does not exist.</exception>
    /// <exception cref="InvalidDataException">Malformed JSON or a TSV line without a tab (the message gives the line).</exception>
    public static ClassDescriptions Load(string path)
    {
        InputFiles.RequireRegularFile(path, "Class description file");
        if (path.EndsWith(".json", StringComparison.OrdinalIgnoreCase))
        {
            Dictionary<string, string[]>? d;
            try { d = JsonSerializer.Deserialize<Dictionary<string, string[]>>(File.ReadAllText(path)); }
            catch (JsonException e) { throw new InvalidDataException($"{path}: expected a JSON object mapping class names to arrays of sentences ({e.Message}).", e); }
            if (d == null) throw new InvalidDataException($"{path}: empty JSON.");
            return new ClassDescriptions(d.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value));
        }
        var acc = new Dictionary<string, List<string>>(StringComparer.Ordinal);
        int lineNo = 0;
        foreach (var raw in File.ReadLines(path))
        {
            lineNo++;
            if (raw.Trim().Length == 0 || raw.StartsWith('#')) continue;
            int tab = raw.IndexOf('\t');
            if (tab <= 0) throw new InvalidDataException($"{path}, line {lineNo}: expected 'class<TAB>sentence'.");
            var cls = raw[..tab].Trim();
            if (!acc.TryGetValue(cls, out var list)) acc[cls] = list = new List<string>();
            list.Add(raw[(tab + 1)..]);
        }
        return new ClassDescriptions(acc.ToDictionary(kv => kv.Key, kv => (IReadOnlyList<string>)kv.Value));
    }
}
