using System.Reflection;
using Microsoft.ML;
using Microsoft.ML.Data;

namespace MLNet.Align.Encoders;

/// <summary>
/// The shared core of <see cref="ImageEmbeddingTransformer"/> and <see cref="TextEmbeddingTransformer"/>: maps a text
/// column (image path or caption) to a float vector column (pooled embedding) and optionally a token column, computed a
/// batch at a time as a cursor advances.
/// </summary>
internal sealed class EmbeddingColumnMapper
{
    public delegate EncodedBatch EncodeFn(IReadOnlyList<string> items, bool withTokens, CancellationToken ct);

    public EmbeddingColumnMapper(string what, string inputColumn, string outputColumn, string? tokensColumn, int batchSize,
        EncodeFn encode, int dimension, int? tokenDimension, int? fixedTokenCount)
    {
        if (string.IsNullOrWhiteSpace(outputColumn)) throw new ArgumentException("The output column name is required.");
        if (batchSize <= 0) throw new ArgumentException($"BatchSize must be positive, got {batchSize}.");
        if (tokensColumn is not null && tokenDimension is null)
            throw new ArgumentException($"A tokens column '{tokensColumn}' was asked for, but the {what} encoder exposes no tokens.");
        if (tokensColumn == outputColumn) throw new ArgumentException($"The tokens column and the output column are both '{outputColumn}'.");
        What = what; InputColumn = inputColumn; OutputColumn = outputColumn; TokensColumn = tokensColumn; BatchSize = batchSize;
        Encode = encode; Dimension = dimension; TokenDimension = tokenDimension; FixedTokenCount = fixedTokenCount;
    }

    public string What { get; }
    public string InputColumn { get; }
    public string OutputColumn { get; }
    public string? TokensColumn { get; }
    public int BatchSize { get; }
    public EncodeFn Encode { get; }
    public int Dimension { get; }
    public int? TokenDimension { get; }
    public int? FixedTokenCount { get; }

    public VectorDataViewType PooledType => new(NumberDataViewType.Single, Dimension);

    /// <summary>Fixed [T*Dt] for image feature maps, variable-size [len*Dt] for text.</summary>
    public VectorDataViewType TokensType => FixedTokenCount is int t
        ? new(NumberDataViewType.Single, t * TokenDimension!.Value)
        : new(NumberDataViewType.Single);

    /// <summary>Index of the input column.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Missing or not a text column (ML.NET's schema-mismatch type).</exception>
    public int CheckInput(DataViewSchema schema)
    {
        var col = schema.GetColumnOrNull(InputColumn)
            ?? throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{InputColumn}' ({What}) not found. Columns: {string.Join(", ", schema.Select(c => c.Name))}.");
        if (col.Type is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(schema), $"Input column '{InputColumn}' must be Text ({What}), but is {col.Type}.");
        return col.Index;
    }

    public SchemaShape GetOutputSchema(SchemaShape input)
    {
        var found = input.FirstOrDefault(c => c.Name == InputColumn);
        if (found.Name is null)
            throw new ArgumentOutOfRangeException(nameof(input), $"Input column '{InputColumn}' ({What}) not found. Columns: {string.Join(", ", input.Select(c => c.Name))}.");
        if (found.Kind != SchemaShape.Column.VectorKind.Scalar || found.ItemType is not TextDataViewType)
            throw new ArgumentOutOfRangeException(nameof(input), $"Input column '{InputColumn}' must be a Text scalar ({What}), but is {found.Kind} of {found.ItemType}.");
        var result = input.Where(c => c.Name != OutputColumn && c.Name != TokensColumn).ToList();
        result.Add(ShapeColumn(OutputColumn, SchemaShape.Column.VectorKind.Vector));
        if (TokensColumn is not null)
            result.Add(ShapeColumn(TokensColumn, FixedTokenCount is null ? SchemaShape.Column.VectorKind.VariableVector : SchemaShape.Column.VectorKind.Vector));
        return new SchemaShape(result);
    }

    public DataViewSchema GetOutputSchema(DataViewSchema input)
    {
        CheckInput(input);
        var b = new DataViewSchema.Builder();
        b.AddColumns(input);
        b.AddColumn(OutputColumn, PooledType);
        if (TokensColumn is not null) b.AddColumn(TokensColumn, TokensType);
        return b.ToSchema();
    }

    // SchemaShape.Column's constructor is internal in ML.NET (all versions); estimators outside ML.NET can only build
    // one by reflection (the same workaround as other third-party transforms). Kept to this one place.
    private static readonly ConstructorInfo? ColumnCtor = typeof(SchemaShape.Column)
        .GetConstructors(BindingFlags.Instance | BindingFlags.NonPublic | BindingFlags.Public)
        .FirstOrDefault(c => c.GetParameters().Length == 5);

    private static SchemaShape.Column ShapeColumn(string name, SchemaShape.Column.VectorKind kind)
    {
        if (ColumnCtor is null)
            throw new InvalidOperationException("This ML.NET version has no SchemaShape.Column(name, kind, type, isKey, annotations) constructor.");
        return (SchemaShape.Column)ColumnCtor.Invoke([name, kind, NumberDataViewType.Single, false, null]);
    }
}

/// <summary>A lazy view: the input plus the embedding column(s), computed one batch of rows at a time.</summary>
internal sealed class EmbeddingDataView : IDataView
{
    private readonly IDataView _input;
    private readonly EmbeddingColumnMapper _m;
    private readonly int _inputIndex;

    public EmbeddingDataView(IDataView input, EmbeddingColumnMapper mapper)
    {
        _input = input;
        _m = mapper;
        _inputIndex = mapper.CheckInput(input.Schema);
        Schema = mapper.GetOutputSchema(input.Schema);
    }

    public DataViewSchema Schema { get; }

    /// <summary>False: the batch read-ahead relies on two cursors seeing rows in the same order.</summary>
    public bool CanShuffle => false;

    public long? GetRowCount() => _input.GetRowCount();

    public DataViewRowCursor GetRowCursor(IEnumerable<DataViewSchema.Column> columnsNeeded, Random? rand = null)
    {
        int n = _input.Schema.Count;
        var needed = columnsNeeded.Select(c => c.Index).ToHashSet();
        bool pooled = needed.Contains(n), tokens = _m.TokensColumn is not null && needed.Contains(n + 1);
        var inputCols = needed.Where(i => i < n).Select(i => _input.Schema[i]).ToList();
        var main = _input.GetRowCursor(inputCols);
        var ahead = pooled || tokens ? _input.GetRowCursor([_input.Schema[_inputIndex]]) : null;
        return new Cursor(this, main, ahead, pooled, tokens);
    }

    public DataViewRowCursor[] GetRowCursorSet(IEnumerable<DataViewSchema.Column> columnsNeeded, int n, Random? rand = null)
        => [GetRowCursor(columnsNeeded, rand)];

    private sealed class Cursor : DataViewRowCursor
    {
        private readonly EmbeddingDataView _view;
        private readonly DataViewRowCursor _main;
        private readonly DataViewRowCursor? _ahead;
        private readonly ValueGetter<ReadOnlyMemory<char>>? _aheadGetter;
        private readonly bool _pooled, _tokens;
        private EncodedBatch? _batch;
        private int _inBatch = -1, _batchCount;

        public Cursor(EmbeddingDataView view, DataViewRowCursor main, DataViewRowCursor? ahead, bool pooled, bool tokens)
        {
            _view = view; _main = main; _ahead = ahead; _pooled = pooled; _tokens = tokens;
            _aheadGetter = ahead?.GetGetter<ReadOnlyMemory<char>>(ahead.Schema[view._inputIndex]);
        }

        public override DataViewSchema Schema => _view.Schema;
        public override long Position => _main.Position;
        public override long Batch => _main.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => _main.GetIdGetter();

        public override bool IsColumnActive(DataViewSchema.Column column)
        {
            int n = _view._input.Schema.Count;
            if (column.Index < n) return _main.IsColumnActive(_main.Schema[column.Index]);
            return column.Index == n ? _pooled : _tokens;
        }

        public override bool MoveNext()
        {
            if (!_main.MoveNext()) return false;
            if (_ahead is not null && ++_inBatch >= _batchCount) FillBatch();
            return true;
        }

        private void FillBatch()
        {
            var m = _view._m;
            var items = new List<string>(m.BatchSize);
            long firstRow = _main.Position;
            ReadOnlyMemory<char> value = default;
            while (items.Count < m.BatchSize && _ahead!.MoveNext())
            {
                _aheadGetter!(ref value);
                items.Add(value.ToString());
            }
            if (items.Count == 0)
                throw new InvalidOperationException($"Column '{m.InputColumn}': the read-ahead cursor ended before row {firstRow}; the input view is not deterministic.");
            try
            {
                _batch = m.Encode(items, _tokens, default);
            }
            catch (ArgumentException e)
            {
                // Missing/corrupt files pass through unchanged (they name the file); item indices are batch-relative.
                throw new ArgumentException($"Column '{m.InputColumn}', batch starting at row {firstRow} (item indices are relative to it): {e.Message}", e);
            }
            _batchCount = items.Count;
            _inBatch = 0;
        }

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int n = _view._input.Schema.Count;
            if (column.Index < n) return _main.GetGetter<TValue>(_main.Schema[column.Index]);
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Column '{column.Name}' is a float vector; asked for {typeof(TValue)}.");
            bool pooled = column.Index == n;
            if (pooled ? !_pooled : !_tokens) throw new InvalidOperationException($"Column '{column.Name}' is not active in this cursor.");
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
            {
                if (_batch is null || _inBatch < 0) throw new InvalidOperationException("The cursor is not on a row.");
                WriteRow(_batch, _inBatch, pooled, ref dst);
            };
            return (ValueGetter<TValue>)(object)getter;
        }

        protected override void Dispose(bool disposing)
        {
            if (disposing) { _main.Dispose(); _ahead?.Dispose(); }
            base.Dispose(disposing);
        }
    }

    /// <summary>Copies row <paramref name="i"/> of an encoding: the pooled vector, or the row's valid tokens [len*Dt].</summary>
    internal static void WriteRow(EncodedBatch e, int i, bool pooled, ref VBuffer<float> dst)
    {
        ReadOnlySpan<float> src = pooled
            ? e.Pooled.Row(i)
            : e.Tokens!.Item(i)[..(e.Tokens.Lengths[i] * e.Tokens.Dimension)];
        var editor = VBufferEditor.Create(ref dst, src.Length);
        src.CopyTo(editor.Values);
        dst = editor.Commit();
    }
}

/// <summary>Row-to-row mapping for PredictionEngine: each row is encoded alone (a batch of 1), cached per input value.</summary>
internal sealed class EmbeddingRowMapper : IRowToRowMapper
{
    private readonly EmbeddingColumnMapper _m;
    private readonly int _inputIndex;

    public EmbeddingRowMapper(DataViewSchema inputSchema, EmbeddingColumnMapper mapper)
    {
        _m = mapper;
        _inputIndex = mapper.CheckInput(inputSchema);
        InputSchema = inputSchema;
        OutputSchema = mapper.GetOutputSchema(inputSchema);
    }

    public DataViewSchema InputSchema { get; }
    public DataViewSchema OutputSchema { get; }

    public IEnumerable<DataViewSchema.Column> GetDependencies(IEnumerable<DataViewSchema.Column> dependingColumns)
    {
        var cols = dependingColumns.ToList();
        int n = InputSchema.Count;
        var result = cols.Where(c => c.Index < n).Select(c => InputSchema[c.Index]).ToList();
        if (cols.Any(c => c.Index >= n) && result.All(c => c.Index != _inputIndex)) result.Add(InputSchema[_inputIndex]);
        return result;
    }

    public DataViewRow GetRow(DataViewRow input, IEnumerable<DataViewSchema.Column> activeColumns)
        => new Row(this, input, activeColumns.Select(c => c.Index).ToHashSet());

    private sealed class Row(EmbeddingRowMapper owner, DataViewRow input, HashSet<int> active) : DataViewRow
    {
        private readonly ValueGetter<ReadOnlyMemory<char>> _source = input.GetGetter<ReadOnlyMemory<char>>(input.Schema[owner._inputIndex]);
        private string? _cachedKey;
        private EncodedBatch? _cached;

        public override DataViewSchema Schema => owner.OutputSchema;
        public override long Position => input.Position;
        public override long Batch => input.Batch;
        public override ValueGetter<DataViewRowId> GetIdGetter() => input.GetIdGetter();
        public override bool IsColumnActive(DataViewSchema.Column column)
            => column.Index < owner.InputSchema.Count ? input.IsColumnActive(input.Schema[column.Index]) : active.Contains(column.Index);

        public override ValueGetter<TValue> GetGetter<TValue>(DataViewSchema.Column column)
        {
            int n = owner.InputSchema.Count;
            if (column.Index < n) return input.GetGetter<TValue>(input.Schema[column.Index]);
            if (typeof(TValue) != typeof(VBuffer<float>))
                throw new InvalidOperationException($"Column '{column.Name}' is a float vector; asked for {typeof(TValue)}.");
            bool pooled = column.Index == n;
            ValueGetter<VBuffer<float>> getter = (ref VBuffer<float> dst) =>
            {
                ReadOnlyMemory<char> value = default;
                _source(ref value);
                string key = value.ToString();
                if (_cached is null || _cachedKey != key || (!pooled && _cached.Tokens is null))
                {
                    bool tokens = owner._m.TokensColumn is not null && active.Contains(n + 1);
                    _cached = owner._m.Encode([key], tokens, default);
                    _cachedKey = key;
                }
                EmbeddingDataView.WriteRow(_cached, 0, pooled, ref dst);
            };
            return (ValueGetter<TValue>)(object)getter;
        }
    }
}
