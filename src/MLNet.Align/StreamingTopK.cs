namespace MLNet.Align;

/// <summary>The streaming form of the library's top-k (<see cref="DenseMath.TopK"/> ranks a span held in memory): a bounded
/// min-heap of the K best (score, row) seen so far, worst at the root; "better" = higher score, then lower row; NaN
/// scores are never kept. The curator keeps one per concept while it streams the pool.</summary>
internal sealed class StreamingTopK(int capacity)
{
    private readonly float[] _score = new float[capacity];
    private readonly long[] _row = new long[capacity];
    private int _count;

    private static bool Worse(float s1, long r1, float s2, long r2) => s1 < s2 || (s1 == s2 && r1 > r2);

    public void Offer(float score, long row)
    {
        if (float.IsNaN(score)) return;
        if (_count < capacity)
        {
            int i = _count++;
            _score[i] = score; _row[i] = row;
            while (i > 0)
            {
                int p = (i - 1) / 2;
                if (!Worse(_score[i], _row[i], _score[p], _row[p])) break;
                Swap(i, p); i = p;
            }
            return;
        }
        if (!Worse(_score[0], _row[0], score, row)) return;
        _score[0] = score; _row[0] = row;
        int j = 0;
        while (true)
        {
            int l = 2 * j + 1, r = l + 1, w = j;
            if (l < _count && Worse(_score[l], _row[l], _score[w], _row[w])) w = l;
            if (r < _count && Worse(_score[r], _row[r], _score[w], _row[w])) w = r;
            if (w == j) break;
            Swap(j, w); j = w;
        }
    }

    private void Swap(int a, int b)
    {
        (_score[a], _score[b]) = (_score[b], _score[a]);
        (_row[a], _row[b]) = (_row[b], _row[a]);
    }

    public (long[] Rows, float[] Scores) Sorted()
    {
        var idx = Enumerable.Range(0, _count).OrderByDescending(i => _score[i]).ThenBy(i => _row[i]).ToArray();
        return (idx.Select(i => _row[i]).ToArray(), idx.Select(i => _score[i]).ToArray());
    }
}
